"""Fake quantization with TF's fake-quant ops (straight-through gradients).

Weights: the grid of ``grid.py`` (symmetric, narrow range, so 0 stays exactly 0), per output
channel for Conv2D/DepthwiseConv2D and per tensor for Dense, computed in-graph. Activations: per tensor,
asymmetric, ranges tracked by exponential moving averages.
"""

from __future__ import annotations

import tensorflow as tf

from workbench.config import check_bits

from workbench.quantization.grid import (RANGE_EPS, max_level, storage_factor, weight_levels,  # noqa: F401
                                         weight_scale)  # (one grid)


def quantize_weights(kernel, bits: int, kind: str, store_bits: int | None = None, training: bool = False):
    """Fake-quantize a kernel: per-channel for 'conv'/'depthwise', per-tensor for 'dense'.

    The range is the kernel's own max |w| (per channel or tensor), held out of the gradient so
    that the op acts as a straight-through estimator.

    With ``training``, a per-channel kernel is quantized by ``per_channel_train`` (the same grid in elementwise
    ops, about 10 times faster on CPU, see there); otherwise, and always for export, by TF's op, which the
    converter reads.

    With ``store_bits`` above ``bits`` (export for speed), the values are the same ``bits`` grid's, but the
    fake-quant op the converter reads is a ``store_bits`` one over a range that holds each of them exactly
    (``grid.storage_factor``): the converter then stores int8, not packed INT4.
    """
    bits = check_bits(bits)
    wider = store_bits is not None and check_bits(store_bits, "store_bits") > bits
    if kind == "dense":
        flat, axis, fake_quant = kernel, None, tf.quantization.fake_quant_with_min_max_vars
    else:
        shape = tf.shape(kernel)
        if kind == "depthwise":  # (kh, kw, in, mult): output channels are in*mult, quantized along them
            flat = tf.reshape(kernel, [shape[0], shape[1], 1, shape[2] * shape[3]])
        else:
            flat = kernel
        axis, fake_quant = [0, 1, 2], tf.quantization.fake_quant_with_min_max_vars_per_channel
    m = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(flat), axis=axis), RANGE_EPS))
    if training and kind != "dense" and not wider:
        q = per_channel_train(flat, m, bits)
    elif wider:  # the coarse grid's values (TF's rounding: floor(x / step + 0.5)), then a fine fake-quant op
        step = m / max_level(bits)
        on_grid = tf.clip_by_value(tf.floor(flat / step + 0.5), -max_level(bits), max_level(bits)) * step
        f = storage_factor(bits, store_bits)
        q = fake_quant(on_grid, -m * f, m * f, num_bits=store_bits, narrow_range=True)
    else:
        q = fake_quant(flat, -m, m, num_bits=bits, narrow_range=True)
    return tf.reshape(q, shape) if kind == "depthwise" else q


def per_channel_train(flat, m, bits: int):
    """TF's narrow-range fake quantization of ``flat`` over [-m, m] per channel (last axis), in elementwise ops,
    for training: its nudged range, ``floor((clamp(x) - min) / step + 0.5) * step + min``, and its gradient
    (straight through inside the range, 0 outside).

    TF's per-channel op loops over channels with a strided view of the kernel: on this 2-core CPU it took 2 ms
    forward and 5 ms with its gradient for one 512x512 pointwise kernel, and made MobileNet's QAT steps 3 to 4
    times slower than float ones (bench/results/qat_profile_mobilenet_v1.json); these ops take about a tenth of
    that. The values equal the op's to within a float rounding (TF's kernel may fuse a multiply-add): rarely, a
    weight on a rounding boundary lands one step away during training; the exported model uses TF's op.
    """
    levels = float(2 ** bits - 2)  # qmax - qmin of the narrow range [1, 2^b - 1]
    scale = 2.0 * m / levels
    inverse = levels / (2.0 * m)
    # TF nudges the zero point to an integer; over [-m, m] it is exactly 2^(b-1), so the nudged range is
    # -max_level * scale .. +max_level * scale (the same products TF computes)
    low = -max_level(bits) * scale
    high = max_level(bits) * scale

    @tf.custom_gradient
    def fake_quant(x):
        y = tf.floor((tf.minimum(tf.maximum(x, low), high) - low) * inverse + 0.5) * scale + low

        def grad(dy):
            return dy * tf.cast((x >= low) & (x <= high), dy.dtype)

        return y, grad

    return fake_quant(flat)


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
