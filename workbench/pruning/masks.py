"""Pure mask maths: scores -> binary masks for a sparsity, a threshold, globally, or by filter."""

from __future__ import annotations

import numpy as np

from workbench.config import check_sparsity


def prune_count(size: int, sparsity: float) -> int:
    """How many of ``size`` weights a ``sparsity`` removes (rounded to nearest)."""
    return int(np.floor(check_sparsity(sparsity) * size + 0.5))


def lowest(flat: np.ndarray, k: int) -> np.ndarray:
    """Boolean flags of the ``k`` lowest values of a 1-D array, ties taken first in C order: the first ``k`` of a
    stable sort, found in O(n) by a partition (a schedule's mask updates run this over every weight of the model)."""
    flat = np.asarray(flat)
    out = np.zeros(flat.size, dtype=bool)
    if k >= flat.size:
        out[:] = True
    elif k > 0:
        kth = np.partition(flat, k - 1)[k - 1]  # NaN sorts last, as in np.sort
        if np.isnan(kth):
            out[~np.isnan(flat)] = True
            out[np.flatnonzero(np.isnan(flat))[:k - int(out.sum())]] = True
        else:
            out |= flat < kth
            out[np.flatnonzero(flat == kth)[:k - int(out.sum())]] = True
    return out


def mask_for_sparsity(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """Mask that zeroes exactly the ``round(sparsity * n)`` lowest scores (ties: first in C order)."""
    scores = np.asarray(scores, dtype=np.float64)
    return (~lowest(scores.ravel(), prune_count(scores.size, sparsity))).astype(np.float32).reshape(scores.shape)


class Ranking:
    """One layer's scores, sorted once (stable: ties in C order), for masks at any sparsity in O(n).

    ``mask_for_sparsity`` and ``threshold_for_sparsity`` are the one-off forms; a slider that moves through
    sparsities keeps one Ranking per layer and sorts only once.
    """

    def __init__(self, scores: np.ndarray):
        self.scores = np.asarray(scores, dtype=np.float64)
        self.order = np.argsort(self.scores.ravel(), kind="stable")

    def mask(self, sparsity: float) -> np.ndarray:
        mask = np.ones(self.scores.size, dtype=np.float32)
        mask[self.order[:prune_count(self.scores.size, sparsity)]] = 0.0
        return mask.reshape(self.scores.shape)

    def threshold(self, sparsity: float) -> float:
        k = prune_count(self.scores.size, sparsity)
        return float(self.scores.ravel()[self.order[k - 1]]) if k else 0.0


def mask_for_threshold(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Mask keeping the weights whose score is strictly above ``threshold``."""
    return (np.asarray(scores) > threshold).astype(np.float32)


def threshold_for_sparsity(scores: np.ndarray, sparsity: float) -> float:
    """The largest pruned score at ``sparsity`` (0.0 when nothing is pruned)."""
    return Ranking(scores).threshold(sparsity)


def global_masks(scores: dict[str, np.ndarray], sparsity: float) -> dict[str, np.ndarray]:
    """One ranking across all layers: the lowest ``sparsity`` fraction of all scores is pruned."""
    names = list(scores)
    flat = np.concatenate([np.asarray(scores[n], dtype=np.float64).ravel() for n in names])
    keep = (~lowest(flat, prune_count(flat.size, sparsity))).astype(np.float32)
    out, start = {}, 0
    for n in names:
        size = np.asarray(scores[n]).size
        out[n] = keep[start:start + size].reshape(np.shape(scores[n]))
        start += size
    return out


def sparsity_of(mask: np.ndarray) -> float:
    """Fraction of zeros in a mask."""
    mask = np.asarray(mask)
    return float(1.0 - np.count_nonzero(mask) / mask.size) if mask.size else 0.0


def filter_l1_norms(kernel: np.ndarray) -> np.ndarray:
    """L1 norm of each output filter of a conv kernel (H, W, in, out) or dense kernel (in, out)."""
    kernel = np.asarray(kernel)
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def filters_to_keep(kernel: np.ndarray, sparsity: float, min_filters: int = 1) -> np.ndarray:
    """Sorted indices of the filters kept when the ``sparsity`` fraction with lowest L1 norm is removed."""
    norms = filter_l1_norms(kernel)
    n = norms.size
    keep = max(min_filters, n - prune_count(n, sparsity))
    order = np.argsort(-norms, kind="stable")[:keep]
    return np.sort(order)
