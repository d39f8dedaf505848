"""Fake quantization with TF's fake-quant ops (straight-through gradients).

Weights: the grid of ``grid.py`` (symmetric, narrow range, so 0 stays exactly 0), per output
channel for Conv2D/DepthwiseConv2D and per tensor for Dense, computed in-graph. Activations: per tensor,
asymmetric, ranges tracked by exponential moving averages.
"""

from __future__ import annotations

import tensorflow as tf

from workbench.config import check_bits

from workbench.quantization.grid import RANGE_EPS, weight_levels, weight_scale  # noqa: F401 (one grid)


def quantize_weights(kernel, bits: int, kind: str):
    """Fake-quantize a kernel: per-channel for 'conv'/'depthwise', per-tensor for 'dense'.

    The range is the kernel's own max |w| (per channel or tensor), held out of the gradient so
    that the op acts as a straight-through estimator.
    """
    bits = check_bits(bits)
    if kind == "dense":
        m = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(kernel)), RANGE_EPS))
        return tf.quantization.fake_quant_with_min_max_vars(kernel, -m, m, num_bits=bits, narrow_range=True)
    shape = tf.shape(kernel)
    if kind == "depthwise":  # (kh, kw, in, mult): output channels are in*mult, quantized along them
        flat = tf.reshape(kernel, [shape[0], shape[1], 1, shape[2] * shape[3]])
    else:
        flat = kernel
    m = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(flat), axis=[0, 1, 2]), RANGE_EPS))
    q = tf.quantization.fake_quant_with_min_max_vars_per_channel(flat, -m, m, num_bits=bits, narrow_range=True)
    return tf.reshape(q, shape) if kind == "depthwise" else q


def quantize_activations(x, min_value, max_value, bits: int):
    """Fake-quantize activations to ``bits`` over [min_value, max_value] (asymmetric, per tensor)."""
    return tf.quantization.fake_quant_with_min_max_vars(x, min_value, max_value, num_bits=check_bits(bits),
                                                        narrow_range=False)


def ema_update(old_min, old_max, batch_min, batch_max, decay: float, first: bool):
    """New (min, max) after one batch: the batch range on the first step, an EMA afterwards.

    The range always contains 0, as the int8 zero point requires.
    """
    batch_min = tf.minimum(batch_min, 0.0)
    batch_max = tf.maximum(batch_max, 0.0)
    new_min = tf.where(first, batch_min, decay * old_min + (1.0 - decay) * batch_min)
    new_max = tf.where(first, batch_max, decay * old_max + (1.0 - decay) * batch_max)
    return new_min, new_max
