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


def test_gzip_size_matches_the_gzip_command(rng):
    """gzip_size is what `gzip -9 -n` ships: same stream format, size within 0.5% of GNU gzip's own deflate."""
    import shutil
    import subprocess

    data = (rng.integers(0, 8, 200_000).astype(np.uint8).tobytes() + bytes(range(256)) * 400)
    if shutil.which("gzip") is None:
        pytest.fail("the gzip command is missing (Debian's gzip package)")
    shipped = subprocess.run(["gzip", "-9", "-n", "-c"], input=data, capture_output=True, check=True).stdout
    ours = gzip.compress(data, compresslevel=9, mtime=0)
    assert gzip_size(data) == len(ours)
    assert abs(gzip_size(data) - len(shipped)) <= 0.005 * len(shipped)
    assert gzip.decompress(shipped) == gzip.decompress(ours) == data
    assert gzip_size(data) < len(gzip.compress(data, compresslevel=1, mtime=0))


@pytest.mark.slow
@pytest.mark.parametrize("sparsity", [0.0, 0.9, 0.97])
def test_estimate_within_10_percent_of_the_real_export(trained_lenet, small_mnist, sparsity):
    """The Studio's live size readout against the exported .tflite, over sparsities and bits."""
    from workbench.config import QuantConfig
    from workbench.export import export_tflite
    from workbench.metrics.estimate import estimate_sizes

    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=sparsity))
    for bits in (8, 4, 2):
        layer_bits = {name: bits for name in ("conv1", "conv2", "fc1", "fc2")}
        qat, _ = quantize_model(pruned, QuantConfig(layer_weight_bits=layer_bits),
                                calibration_data=small_mnist.x_train[:256])
        data, _ = export_tflite(qat, small_mnist.x_train[:100])
        estimate = estimate_sizes(pruned, layer_bits)
        assert estimate["int8_bytes"] == pytest.approx(len(data), rel=0.10), (sparsity, bits)
        assert estimate["gzip_bytes"] == pytest.approx(gzip_size(data), rel=0.10), (sparsity, bits)
        assert estimate_sizes(qat)["gzip_bytes"] == pytest.approx(gzip_size(data), rel=0.10), (sparsity, bits)


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


def test_graph_macs_match_the_keras_count_and_see_pruned_weights(trained_lenet, small_mnist):
    """LeNet-5 (20 5x5 filters on 28x28, 50 5x5x20 on 12x12, 800x500, 500x10): MACs by hand, from the
    fp32 graph and from the Keras model agree; zeroed weights lower only the non-zero count."""
    from workbench.export.tflite import convert_float
    from workbench.metrics.flops import graph_macs
    from workbench.pruning.structured import count_macs

    by_hand = 24 * 24 * 20 * 25 + 8 * 8 * 50 * 25 * 20 + 800 * 500 + 500 * 10
    compute = graph_macs(convert_float(trained_lenet))
    assert compute["macs"] == by_hand == count_macs(trained_lenet) and compute["flops"] == 2 * by_hand
    assert [op["op"] for op in compute["ops"]] == ["CONV_2D", "CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    import keras

    sparse = keras.models.clone_model(trained_lenet)
    weights = trained_lenet.get_weights()
    fc1 = [i for i, w in enumerate(weights) if w.shape == (800, 500)][0]
    weights[fc1] = np.where(np.arange(800 * 500).reshape(800, 500) % 4 == 0, weights[fc1], 0.0).astype("float32")
    sparse.set_weights(weights)
    pruned = graph_macs(convert_float(sparse))
    assert pruned["macs"] == by_hand
    assert pruned["nonzero_macs"] == compute["nonzero_macs"] - int(np.sum(trained_lenet.get_weights()[fc1] != 0)) \
        + int(np.count_nonzero(weights[fc1]))
