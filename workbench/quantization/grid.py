"""The symmetric weight grid, in one place: every module that quantizes weights in numpy calls these.

Weights use a narrow symmetric range: integers -(2^(b-1)-1)..2^(b-1)-1 times a scale of
max|w| / (2^(b-1)-1), taken per tensor for Dense and per output channel for Conv2D and
DepthwiseConv2D (whose output channels are in x multiplier). 0 maps to 0 exactly, so pruned
weights stay zero. TF's fake-quant ops (``fake_quant.py``) compute the same grid in-graph.
"""

from __future__ import annotations

import numpy as np

from workbench.config import check_bits

RANGE_EPS = 1e-6
KINDS = ("conv", "depthwise", "dense")


def max_level(bits: int) -> int:
    """The largest integer of a ``bits`` narrow symmetric grid: 2^(b-1) - 1."""
    return 2 ** (check_bits(bits) - 1) - 1


def weight_levels(bits: int) -> int:
    """How many distinct values a symmetric narrow-range ``bits`` weight quantizer has."""
    return 2 * max_level(bits) + 1


def storage_factor(bits: int, store_bits: int = 8) -> float:
    """The factor f for which a ``store_bits`` grid over [-f*m, f*m] holds every value of the ``bits`` grid
    over [-m, m] exactly: its step, m*f / max_level(store_bits), is the coarse step m / max_level(bits)
    divided by a whole number (4 bits in 8: f = 127/126, step m/126, and 18 fine steps per coarse one).

    Exporting for speed stores a 4-bit layer's values as int8 this way: the same values, in the integer
    type that fast kernels (XNNPACK's int8) run, instead of packed INT4.
    """
    coarse, fine = max_level(bits), max_level(store_bits)
    if coarse > fine:
        raise ValueError(f"store_bits must be at least bits. Received: bits={bits}, store_bits={store_bits}")
    return fine / (coarse * (fine // coarse))


def channels_last(kernel: np.ndarray, kind: str) -> np.ndarray:
    """The kernel as (..., output channels): depthwise (kh, kw, in, mult) becomes (kh, kw, 1, in*mult)."""
    kernel = np.asarray(kernel)
    if kind == "depthwise":
        kh, kw, cin, mult = kernel.shape
        return kernel.reshape(kh, kw, 1, cin * mult)
    return kernel


def max_abs(kernel: np.ndarray, kind: str) -> np.ndarray:
    """The range of the grid: max |w| of the whole tensor (dense) or of each output channel (conv, depthwise)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")
    kernel = np.asarray(kernel, dtype=np.float64)
    if kind == "dense":
        return np.asarray(np.abs(kernel).max() if kernel.size else 0.0)
    flat = channels_last(kernel, kind)
    return np.abs(flat).reshape(-1, flat.shape[-1]).max(axis=0)


def weight_scale(max_abs_value, bits: int) -> np.ndarray:
    """Step between adjacent levels for a range [-max_abs, max_abs]."""
    return np.maximum(np.asarray(max_abs_value, dtype=np.float64), RANGE_EPS) / max_level(bits)


def integer_weights(kernel: np.ndarray, kind: str, bits: int) -> np.ndarray:
    """The kernel's integers on its grid (int32, same shape as ``kernel``): what TFLite stores."""
    kernel = np.asarray(kernel, dtype=np.float64)
    scale = weight_scale(max_abs(kernel, kind), bits)
    flat = channels_last(kernel, kind)
    q = np.clip(np.round(flat / scale), -max_level(bits), max_level(bits)).astype(np.int32)
    return q.reshape(kernel.shape)


def quantize(kernel: np.ndarray, kind: str, bits: int) -> np.ndarray:
    """The kernel rounded to its grid, as floats (a numpy reference of the fake-quant op)."""
    kernel = np.asarray(kernel, dtype=np.float64)
    scale = weight_scale(max_abs(kernel, kind), bits)
    return (channels_last(integer_weights(kernel, kind, bits), kind) * scale).reshape(kernel.shape)


def grid_values(kernel: np.ndarray, kind: str, bits: int) -> np.ndarray:
    """The values the grid can produce: of the tensor (dense), or of its widest channel (conv, depthwise)."""
    m = float(np.max(max_abs(kernel, kind))) if np.size(kernel) else 0.0
    q = max_level(bits)
    return np.arange(-q, q + 1) * (m / q if m else 0.0)
