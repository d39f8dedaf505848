"""Loss and accuracy of a Keras classifier: shared by pruning (Taylor scores, sensitivity) and training."""

from __future__ import annotations

import keras
import numpy as np


def loss_for(model):
    """Sparse categorical cross-entropy matching whether the model outputs probabilities or logits."""
    last = model.layers[-1]
    act = getattr(last, "activation", None) or getattr(getattr(last, "layer", None), "activation", None)
    act = act if isinstance(act, str) else getattr(act, "__name__", "")
    probs = act == "softmax" or type(last).__name__ == "Softmax"
    return keras.losses.SparseCategoricalCrossentropy(from_logits=not probs)


def predict_labels(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Top-1 class of every image (inference mode)."""
    preds = [np.asarray(model(x[start:start + batch_size], training=False)).argmax(axis=-1)
             for start in range(0, len(x), batch_size)]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def correct_predictions(model, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Boolean array: was each image classified right?"""
    return predict_labels(model, x, batch_size) == np.asarray(y)


def accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of a Keras model (nan for no images)."""
    correct = correct_predictions(model, x, y, batch_size)
    return float(correct.mean()) if correct.size else float("nan")
