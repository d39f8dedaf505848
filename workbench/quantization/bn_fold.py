"""Fold BatchNormalization into the preceding convolution or dense layer (pure numpy).

For y = conv(x, W) + b followed by BN(gamma, beta, mean, var, eps):
W' = W * s,  b' = (b - mean) * s + beta,  with s = gamma / sqrt(var + eps) per output channel.
"""

from __future__ import annotations

import numpy as np


def fold_batchnorm(kernel: np.ndarray, bias: np.ndarray | None, gamma: np.ndarray | None,
                   beta: np.ndarray | None, mean: np.ndarray, var: np.ndarray, epsilon: float,
                   kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (folded kernel, folded bias) for a 'conv', 'depthwise' or 'dense' kernel."""
    kernel = np.asarray(kernel, dtype=np.float64)
    channels = np.asarray(mean).shape[0]
    gamma = np.ones(channels) if gamma is None else np.asarray(gamma, dtype=np.float64)
    beta = np.zeros(channels) if beta is None else np.asarray(beta, dtype=np.float64)
    bias = np.zeros(channels) if bias is None else np.asarray(bias, dtype=np.float64)
    scale = gamma / np.sqrt(np.asarray(var, dtype=np.float64) + epsilon)
    if kind == "depthwise":
        kh, kw, cin, mult = kernel.shape
        folded = kernel * scale.reshape(1, 1, cin, mult)
    else:
        folded = kernel * scale  # broadcast over the last (output) axis
    new_bias = (bias - np.asarray(mean, dtype=np.float64)) * scale + beta
    return folded.astype(np.float32), new_bias.astype(np.float32)


def batchnorm_params(bn_layer) -> dict:
    """gamma, beta, moving mean/var and epsilon of a Keras BatchNormalization layer (channels-last)."""
    axis = bn_layer.axis if isinstance(bn_layer.axis, int) else bn_layer.axis[0]
    if axis not in (-1, len(bn_layer.input.shape) - 1 if hasattr(bn_layer, "input") else -1):
        raise ValueError(f"BatchNormalization {bn_layer.name!r} normalises axis {axis}; only the channel axis folds.")
    return {
        "gamma": bn_layer.gamma.numpy() if bn_layer.scale else None,
        "beta": bn_layer.beta.numpy() if bn_layer.center else None,
        "mean": bn_layer.moving_mean.numpy(),
        "var": bn_layer.moving_variance.numpy(),
        "epsilon": float(bn_layer.epsilon),
    }
