"""Importance scores for weights: magnitude |w| and first-order Taylor saliency |w * dL/dw|.

Taylor saliency (Molchanov et al., 2017/2019) estimates how much the loss changes when a weight
is removed; it is the seed paper's "influence on the model's output".
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from workbench.errors import DataError
from workbench.nn.evaluate import loss_for


def magnitude(weights: np.ndarray) -> np.ndarray:
    """|w|, elementwise."""
    return np.abs(np.asarray(weights, dtype=np.float64))


def taylor(weights: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """|w * g|, elementwise, for one batch."""
    return np.abs(np.asarray(weights, dtype=np.float64) * np.asarray(grads, dtype=np.float64))


def accumulate_taylor(model, layers, x: np.ndarray, y: np.ndarray, batch_size: int = 128,
                      batches: int = 8) -> dict[str, np.ndarray]:
    """Sum over ``batches`` batches of |w * dL/dw| for the kernels of ``layers`` (PruneWrappers).

    Pruned weights score 0, so re-scoring never revives them.
    """
    if len(x) == 0:
        raise DataError("Taylor scores need training examples; received an empty array.")
    loss_fn = loss_for(model)
    kernels = [layer.layer.kernel for layer in layers]
    totals = [np.zeros(tuple(k.shape), dtype=np.float64) for k in kernels]
    n = min(batches * batch_size, len(x))
    for start in range(0, n, batch_size):
        xb = tf.convert_to_tensor(x[start:start + batch_size])
        yb = tf.convert_to_tensor(y[start:start + batch_size])
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=False))
        grads = tape.gradient(loss, kernels)
        for i, (layer, g) in enumerate(zip(layers, grads)):
            if g is not None:
                totals[i] += taylor(layer.effective_kernel(), g.numpy())
    return {layer.name: total for layer, total in zip(layers, totals)}
