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
