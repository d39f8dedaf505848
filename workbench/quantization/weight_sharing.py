"""k-means weight sharing (Deep Compression's per-layer codebooks), as pure numpy functions.

A layer's surviving (unpruned) weights are clustered in one dimension; each weight is then
replaced by its cluster's centroid, so the layer holds at most ``k`` distinct non-zero values and
an index per weight. Pruned weights are not clustered: they stay exactly zero.

Initialisation is linear over [min, max] of the surviving weights, which Deep Compression found
to keep the large (rare, important) weights better than density-based initialisation.
"""

from __future__ import annotations

import numpy as np

from workbench.config import check_clusters
from workbench.errors import ConfigError


def assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for each value (``centroids`` sorted ascending; ties go low)."""
    centroids = np.asarray(centroids, dtype=np.float64)
    midpoints = (centroids[1:] + centroids[:-1]) / 2.0
    return np.searchsorted(midpoints, np.asarray(values, dtype=np.float64), side="left").astype(np.int32)


def kmeans_1d(values: np.ndarray, k: int, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars with linear initialisation.

    Returns ``(centroids, labels)``: ``k`` centroids sorted ascending (float32) and, for each
    value, the index of its centroid. A cluster that loses all its members keeps its centroid.
    Deterministic: the same values give the same codebook.
    """
    k = check_clusters(k, "k")
    if k == 0:
        raise ConfigError("k must be at least 2 to cluster. Received: k=0")
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return np.zeros(k, dtype=np.float32), np.zeros(0, dtype=np.int32)
    centroids = np.linspace(values.min(), values.max(), k)
    labels = assign(values, centroids)
    for _ in range(iterations):
        sums = np.bincount(labels, weights=values, minlength=k)
        counts = np.bincount(labels, minlength=k)
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        updated.sort()
        new_labels = assign(values, updated)
        centroids = updated
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return centroids.astype(np.float32), labels


def share_weights(kernel: np.ndarray, mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the unpruned entries of ``kernel`` into ``k`` shared values.

    Returns ``(centroids, assignment)`` with ``assignment`` shaped like ``kernel`` (pruned entries
    get index 0; the mask keeps them zero). ``centroids[assignment] * mask`` is the shared kernel.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    mask = np.asarray(mask, dtype=np.float32)
    if kernel.shape != mask.shape:
        raise ConfigError(f"kernel and mask shapes differ. Received: kernel {kernel.shape}, mask {mask.shape}")
    keep = mask.ravel() != 0
    centroids, labels = kmeans_1d(kernel.ravel()[keep], k)
    assignment = np.zeros(kernel.size, dtype=np.int32)
    assignment[keep] = labels
    return centroids, assignment.reshape(kernel.shape)

