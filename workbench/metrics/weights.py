"""Weight statistics for plots: histograms split by mask, kernel maps, quantization levels.

Pure numpy; the widget views only draw what these return (as Distiller's notebooks plot the
DataFrames its summaries return).
"""

from __future__ import annotations

import numpy as np

from workbench.config import check_bits
from workbench.quantization import grid


def weight_histogram(kernel: np.ndarray, mask: np.ndarray, bins: int = 80) -> dict:
    """Counts of kept and pruned weights over common bin edges spanning the whole kernel.

    Returns {'edges', 'centers', 'kept', 'pruned'}; kept + pruned equals ``np.histogram(kernel, edges)``.
    """
    kernel = np.asarray(kernel, dtype=np.float64).ravel()
    mask = np.asarray(mask).ravel()
    lo, hi = float(kernel.min()), float(kernel.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    kept, _ = np.histogram(kernel[mask != 0], edges)
    pruned, _ = np.histogram(kernel[mask == 0], edges)
    return {"edges": edges, "centers": (edges[:-1] + edges[1:]) / 2, "kept": kept, "pruned": pruned}


def score_histogram(scores: np.ndarray, mask: np.ndarray, bins: int = 80) -> dict:
    """Counts of kept and pruned weights over log10 of their scores (e.g. Taylor |w·dL/dw|).

    Scores span many decades, so bins are even in log10; weights whose score is exactly 0 go to
    one extra bin on the left. Returns {'edges', 'centers', 'kept', 'pruned', 'zero_center'};
    kept + pruned counts every weight once.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    mask = np.asarray(mask).ravel()
    positive = scores > 0
    logs = np.log10(scores[positive]) if positive.any() else np.zeros(0)
    lo, hi = (float(logs.min()), float(logs.max())) if logs.size else (-1.0, 0.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    kept, _ = np.histogram(logs[mask[positive] != 0], edges)
    pruned, _ = np.histogram(logs[mask[positive] == 0], edges)
    width = edges[1] - edges[0]
    zero_center = lo - width
    centers = np.concatenate([[zero_center], (edges[:-1] + edges[1:]) / 2])
    kept = np.concatenate([[int(np.sum(~positive & (mask != 0)))], kept])
    pruned = np.concatenate([[int(np.sum(~positive & (mask == 0)))], pruned])
    return {"edges": edges, "centers": centers, "kept": kept, "pruned": pruned, "zero_center": zero_center}


def kernel_map(kernel: np.ndarray, mask: np.ndarray) -> dict:
    """A kernel as a 2D map: rows are output channels, columns are inputs x kernel positions.

    Returns {'z': |w| with NaN where pruned, 'filter_sparsity': fraction pruned per output channel}.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    mask = np.asarray(mask)
    if kernel.ndim == 4 and kernel.shape[-1] == 1 and kernel.shape[-2] > 1:  # depthwise (kh, kw, c, 1)
        kernel, mask = np.moveaxis(kernel, -2, -1), np.moveaxis(mask, -2, -1)
    out = kernel.shape[-1]
    z = np.abs(kernel).reshape(-1, out).T.copy()
    m = mask.reshape(-1, out).T
    z[m == 0] = np.nan
    return {"z": z, "filter_sparsity": 1.0 - np.count_nonzero(m, axis=1) / m.shape[1]}


def quant_levels(kernel: np.ndarray, bits: int, kind: str) -> np.ndarray:
    """The weight values a symmetric ``bits`` quantizer can produce for this kernel.

    Per-tensor (dense): the kernel's grid. Per-channel (conv): the grid of the widest channel.
    """
    return grid.grid_values(kernel, kind, check_bits(bits))
