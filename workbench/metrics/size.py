"""Size accounting: fp32, .tflite, gzip -9 and entropy-coded bytes, per model and per layer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from workbench.export.tflite import gzip_size
from workbench.metrics.entropy import dense_entropy_bytes, sparse_entropy_bytes
from workbench.metrics.layers import weight_layers
from workbench.metrics.tflite_tensors import stored_tensors
from workbench.pruning.masks import sparsity_of

RATIO_FORMULA = "compression_ratio = fp32_bytes / gzip_bytes (gzip -9 of the int8 .tflite)"
CONV_INDEX_BITS, FC_INDEX_BITS = 8, 5


@dataclasses.dataclass
class SizeReport:
    """The four sizes of a compressed model and the ratio that ships."""

    fp32_bytes: int
    tflite_bytes: int
    gzip_bytes: int
    entropy_bytes: int
    tensors: list = dataclasses.field(default_factory=list)

    @property
    def compression_ratio(self) -> float:
        return self.fp32_bytes / self.gzip_bytes if self.gzip_bytes else float("nan")

    @property
    def entropy_ratio(self) -> float:
        return self.fp32_bytes / self.entropy_bytes if self.entropy_bytes else float("nan")

    def to_dict(self) -> dict:
        return {"fp32_bytes": self.fp32_bytes, "tflite_bytes": self.tflite_bytes, "gzip_bytes": self.gzip_bytes,
                "entropy_bytes": self.entropy_bytes, "compression_ratio": self.compression_ratio,
                "entropy_ratio": self.entropy_ratio, "ratio_formula": RATIO_FORMULA, "tensors": self.tensors}


def fp32_bytes(model) -> int:
    """4 bytes per parameter of the uncompressed model (trainable and non-trainable)."""
    return int(model.count_params()) * 4


def entropy_coded_bytes(tflite_data: bytes) -> tuple[int, list[dict]]:
    """Deep-Compression-style estimate of the stored tensors of an int8 .tflite.

    int8 weight tensors: Huffman-coded relative CSR (8-bit gaps for conv, 5-bit for FC) or a
    Huffman-coded dense stream, whichever is smaller, plus 4 bytes per scale. Other constants
    (int32 biases, shapes) count at their raw size.
    """
    total, rows = 0, []
    for t in stored_tensors(tflite_data):
        if t.values.dtype == np.int8 and len(t.shape) >= 2:
            index_bits = FC_INDEX_BITS if len(t.shape) == 2 else CONV_INDEX_BITS
            sparse = sparse_entropy_bytes(t.values, index_bits)["bytes"]
            dense = dense_entropy_bytes(t.values)
            coded = min(sparse, dense) + 4 * t.scales.size
            rows.append({"tensor": t.name, "shape": list(t.shape), "raw_bytes": t.nbytes, "coded_bytes": int(coded),
                         "format": "sparse" if sparse <= dense else "dense", "nonzeros": int(np.count_nonzero(t.values)),
                         "distinct": int(np.unique(t.values).size)})
        else:
            coded = t.nbytes
            rows.append({"tensor": t.name, "shape": list(t.shape), "raw_bytes": t.nbytes, "coded_bytes": int(coded),
                         "format": "raw", "nonzeros": int(np.count_nonzero(t.values)),
                         "distinct": int(np.unique(t.values).size)})
        total += int(coded)
    return total, rows


def size_report(fp32: int, tflite_data: bytes) -> SizeReport:
    """All four sizes for a model whose fp32 size is ``fp32`` bytes and whose int8 artifact is ``tflite_data``."""
    entropy, rows = entropy_coded_bytes(tflite_data)
    return SizeReport(int(fp32), len(tflite_data), gzip_size(tflite_data), entropy, rows)


def layer_table(model) -> pd.DataFrame:
    """Per weight layer: parameters, nonzeros, sparsity, fp32 bytes and weight bits.

    Works on plain, pruned (PruneWrapper) and QAT (QuantWeightLayer) models.
    """
    rows = []
    for layer in weight_layers(model):
        params, bias = int(layer.kernel.size), int(layer.bias.size)
        rows.append({"layer": layer.name, "kind": layer.kind, "shape": "x".join(map(str, layer.kernel.shape)),
                     "params": params, "bias_params": bias, "nonzeros": int(np.count_nonzero(layer.kernel)),
                     "sparsity": sparsity_of(layer.kernel), "fp32_bytes": 4 * (params + bias),
                     "weight_bits": layer.bits})
    return pd.DataFrame(rows, columns=["layer", "kind", "shape", "params", "bias_params", "nonzeros", "sparsity",
                                       "fp32_bytes", "weight_bits"])
