"""Fast size estimates straight from Keras weights, for live curves (no TFLite conversion).

The int8 estimate quantizes each kernel as the exporter would (per channel for conv, per tensor
for dense, at the layer's bits), lays it out as TFLite does (OHWI / out-in), and adds int32
biases; gzip -9 of those bytes estimates the shipped size. The measured sizes come from
``workbench.metrics.size_report`` on the real artifact.
"""

from __future__ import annotations

import zlib

import numpy as np

from workbench.nn.forward import layer_kind

TFLITE_OVERHEAD_BYTES = 2048  # flatbuffer tables, op codes and names of a small CNN


def _int_kernel(kernel: np.ndarray, kind: str, bits: int) -> np.ndarray:
    levels = 2 ** (bits - 1) - 1
    if kind == "dense":
        m = max(float(np.abs(kernel).max()), 1e-12)
        q = np.round(kernel / m * levels)
        return q.T.astype(np.int8)
    if kind == "depthwise":
        kh, kw, cin, mult = kernel.shape
        kernel = kernel.reshape(kh, kw, 1, cin * mult)
    m = np.maximum(np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0), 1e-12)
    q = np.round(kernel / m * levels).astype(np.int8)
    return np.transpose(q, (3, 0, 1, 2))


def estimate_sizes(model, weight_bits: dict | None = None, fp32_bytes: int | None = None) -> dict:
    """{'fp32_bytes', 'int8_bytes', 'gzip_bytes'} estimated from a plain, pruned or QAT Keras model."""
    from workbench.pruning.wrapper import PruneWrapper
    from workbench.quantization.layers import QuantWeightLayer

    weight_bits = weight_bits or {}
    chunks, params = [], 0
    for layer in model.layers:
        if isinstance(layer, PruneWrapper):
            kernel, kind = layer.effective_kernel(), layer.kind
            bias = layer.layer.bias.numpy() if layer.layer.use_bias else None
        elif isinstance(layer, QuantWeightLayer):
            kernel, kind, bias = layer.float_kernel().numpy(), layer.kind, layer.bias.numpy()
            weight_bits = {**weight_bits, layer.name: weight_bits.get(layer.name, layer.weight_bits)}
        elif layer_kind(layer):
            kernel, kind = layer.kernel.numpy(), layer_kind(layer)
            bias = layer.bias.numpy() if layer.use_bias else None
        else:
            params += sum(int(np.prod(w.shape)) for w in layer.weights)
            continue
        params += kernel.size + (bias.size if bias is not None else 0)
        bits = int(weight_bits.get(layer.name, 8))
        q = _int_kernel(kernel, kind, bits)
        if bits <= 4:  # the converter packs <=4-bit weights two per byte
            flat = (q.ravel().astype(np.int16) & 0x0F).astype(np.uint8)
            flat = np.pad(flat, (0, flat.size % 2))
            chunks.append((flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes())
        else:
            chunks.append(q.tobytes())
        if bias is not None:
            chunks.append(np.round(bias * 1e4).astype(np.int32).tobytes())
    blob = b"".join(chunks)
    return {"fp32_bytes": int(fp32_bytes if fp32_bytes is not None else 4 * params),
            "int8_bytes": len(blob) + TFLITE_OVERHEAD_BYTES,
            "gzip_bytes": len(zlib.compress(blob, 6)) + TFLITE_OVERHEAD_BYTES // 4}
