"""Size accounting against hand-computed references."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from workbench.config import PruneConfig
from workbench.export import gzip_size
from workbench.metrics import layer_table, size_report
from workbench.metrics.entropy import huffman_bits, huffman_code_lengths, relative_csr, sparse_entropy_bytes
from workbench.pruning.api import prune_model
from workbench.quantization.api import quantize_model


def test_huffman_lengths_match_the_textbook_example():
    freqs = {"a": 45, "b": 13, "c": 12, "d": 16, "e": 9, "f": 5}
    lengths = huffman_code_lengths(freqs)
    assert sum(freqs[s] * lengths[s] for s in freqs) == 224  # CLRS 16.3
    assert lengths["a"] == 1 and sorted(lengths.values()) == [1, 3, 3, 3, 4, 4]
    assert huffman_code_lengths({"x": 7}) == {"x": 1}
    assert huffman_bits([3, 3, 3, 3]) == (4, 1)


def test_relative_csr_inserts_filler_zeros_when_a_gap_overflows():
    values = np.array([5, 0, 0, 0, 0, 0, 0, 7, 0, 2], dtype=np.int8)
    stored, gaps = relative_csr(values, index_bits=2)  # largest gap 3
    assert stored.tolist() == [5, 0, 0, 7, 2] and gaps.tolist() == [1, 3, 3, 1, 2]
    # Expanding the format back gives the original vector.
    rebuilt = np.zeros(10, dtype=np.int8)
    np.put(rebuilt, np.cumsum(gaps) - 1, stored)
    assert np.array_equal(rebuilt, values)


def test_sparse_entropy_shrinks_with_sparsity(rng):
    dense = rng.integers(-127, 128, 4000).astype(np.int8)
    sparse = dense.copy()
    sparse[rng.random(4000) < 0.9] = 0
    assert sparse_entropy_bytes(sparse, 5)["bytes"] < sparse_entropy_bytes(dense, 5)["bytes"] / 4


def test_gzip_size_is_gzip_9():
    data = bytes(range(256)) * 50
    assert gzip_size(data) == len(gzip.compress(data, compresslevel=9, mtime=0))


def test_layer_table_counts_params_nonzeros_and_bits(trained_lenet):
    table = layer_table(trained_lenet)
    assert table.params.sum() + table.bias_params.sum() == 431080
    assert table.fp32_bytes.sum() == 1724320
    pruned, _ = prune_model(trained_lenet, PruneConfig(target="per_layer", sparsity=0.75))
    table = layer_table(pruned).set_index("layer")
    assert np.allclose(table.sparsity, 0.75, atol=1e-3)
    assert (table.nonzeros == np.round(table.params * 0.25)).all()
    qat, _ = quantize_model(pruned, __import__("workbench").QuantConfig(layer_weight_bits={"fc1": 5}))
    assert layer_table(qat).set_index("layer").loc["fc1", "weight_bits"] == 5


def test_size_report_reads_the_int8_file(trained_lenet, small_mnist):
    from workbench.export import export_tflite

    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.9))
    qat, _ = quantize_model(pruned, calibration_data=small_mnist.x_train[:256])
    data, _ = export_tflite(qat, small_mnist.x_train[:100])
    report = size_report(1724320, data)
    d = report.to_dict()
    assert d["tflite_bytes"] == len(data) and d["gzip_bytes"] == gzip_size(data)
    assert d["entropy_bytes"] < d["gzip_bytes"] < d["tflite_bytes"] < d["fp32_bytes"]
    assert d["compression_ratio"] == pytest.approx(1724320 / d["gzip_bytes"])
    assert "fp32_bytes / gzip_bytes" in d["ratio_formula"]
    fc1 = [t for t in d["tensors"] if t["shape"] == [500, 800]][0]
    assert fc1["format"] == "sparse" and fc1["nonzeros"] <= 40000
