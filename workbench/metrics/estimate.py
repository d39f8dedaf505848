"""Fast size estimates straight from Keras weights, for live curves (no TFLite conversion).

The int8 estimate quantizes each kernel as the exporter would (per channel for conv, per tensor
for dense, at the layer's bits), lays it out as TFLite does (OHWI / out-in), and adds int32
biases; gzip -9 of those bytes estimates the shipped size. The measured sizes come from
``workbench.metrics.size_report`` on the real artifact.
"""

from __future__ import annotations

import zlib

import numpy as np

from workbench.metrics.layers import other_params, weight_layers
from workbench.quantization import grid

# Checked against real exports (tests/test_metrics.py::test_estimate_within_10_percent_of_the_real_export):
# LeNet-5 over sparsities 0-0.97 and 2-8 bits, the estimates stay within ±10% of the .tflite and its gzip -9.
TFLITE_OVERHEAD_BYTES = 2048  # flatbuffer tables, op codes, names and activation tensors of a small CNN
BIAS_SCALE = 1e4  # int32 biases: any fixed scale gives the same byte count; this one keeps their entropy realistic
ZLIB_LEVEL = 6  # fast enough for every slider move; level 9 changes the estimate by under 1% here


def _int_kernel(kernel: np.ndarray, kind: str, bits: int) -> np.ndarray:
    """Integers on the weight grid, laid out as TFLite stores them (dense: out x in; conv: OHWI)."""
    q = grid.integer_weights(kernel, kind, bits).astype(np.int8)
    if kind == "dense":
        return q.T
    return np.transpose(grid.channels_last(q, kind), (3, 0, 1, 2))


def estimate_sizes(model, weight_bits: dict | None = None, fp32_bytes: int | None = None) -> dict:
    """{'fp32_bytes', 'int8_bytes', 'gzip_bytes'} estimated from a plain, pruned or QAT Keras model."""
    weight_bits = weight_bits or {}
    chunks, params = [], other_params(model)
    for layer in weight_layers(model):
        params += layer.kernel.size + layer.bias.size
        bits = int(weight_bits.get(layer.name, layer.bits if layer.bits < 32 else 8))
        q = _int_kernel(layer.kernel, layer.kind, bits)
        if bits <= 4:  # the converter packs <=4-bit weights two per byte
            flat = (q.ravel().astype(np.int16) & 0x0F).astype(np.uint8)
            flat = np.pad(flat, (0, flat.size % 2))
            chunks.append((flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes())
        else:
            chunks.append(q.tobytes())
        if layer.bias.size:
            chunks.append(np.round(layer.bias * BIAS_SCALE).astype(np.int32).tobytes())
    blob = b"".join(chunks)
    return {"fp32_bytes": int(fp32_bytes if fp32_bytes is not None else 4 * params),
            "int8_bytes": len(blob) + TFLITE_OVERHEAD_BYTES,
            "gzip_bytes": len(zlib.compress(blob, ZLIB_LEVEL)) + TFLITE_OVERHEAD_BYTES // 4}
