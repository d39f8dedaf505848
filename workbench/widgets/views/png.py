"""A 2D array as a colour PNG data URI, for plotly Image traces.

A kernel map sent as a plotly Heatmap travels as JSON, one float per weight (fc1 of LeNet-5: about 800 KB per
slider move, with NaN for pruned cells, which is not JSON). The same map as a PNG is a few tens of KB that the
browser decodes natively; pruned cells are transparent, so the plot background shows through as blank.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import plotly.colors

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def colour_table(colorscale=plotly.colors.sequential.Viridis, levels: int = 256) -> np.ndarray:
    """(levels, 3) uint8 RGB: the colour scale (hex stops, evenly spaced) interpolated to ``levels`` entries."""
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colorscale], dtype=float)
    at = np.linspace(0, len(stops) - 1, levels)
    return np.stack([np.interp(at, np.arange(len(stops)), stops[:, k]) for k in range(3)], axis=1).round().astype(
        np.uint8)


VIRIDIS = colour_table(levels=255)  # 255 colours and "pruned" (transparent) fill one 8-bit palette


def colour_indices(z: np.ndarray, levels: int = len(VIRIDIS)) -> np.ndarray:
    """(rows, cols) uint8: 0 for NaN cells, 1..levels for finite ones, scaled from their min to their max."""
    z = np.asarray(z, dtype=np.float64)
    if not 1 <= levels <= 255:
        raise ValueError(f"levels must be from 1 to 255 (index 0 is transparent). Received: levels={levels}")
    finite = np.isfinite(z)
    index = np.zeros(z.shape, dtype=np.uint8)
    if finite.any():
        low, high = float(z[finite].min()), float(z[finite].max())
        scaled = (z[finite] - low) / (high - low) if high > low else np.zeros(int(finite.sum()))
        index[finite] = 1 + np.clip(np.round(scaled * (levels - 1)), 0, levels - 1).astype(np.uint8)
    return index


def colour_map(z: np.ndarray, table: np.ndarray = VIRIDIS) -> np.ndarray:
    """(rows, cols, 4) uint8 RGBA: finite cells coloured from their min to their max, NaN cells transparent."""
    palette = np.zeros((len(table) + 1, 4), dtype=np.uint8)
    palette[1:, :3], palette[1:, 3] = table, 255
    return palette[colour_indices(z, len(table))]


def png_palette_bytes(index: np.ndarray, table: np.ndarray = VIRIDIS) -> bytes:
    """A palette PNG: ``index`` (rows, cols) uint8 into [transparent, *table] (8 bits per pixel, no filtering: a
    quarter of an RGBA PNG's bytes before compression; the browser decodes both alike)."""
    index = np.ascontiguousarray(index, dtype=np.uint8)
    if index.ndim != 2 or not index.size:
        raise ValueError(f"png_palette_bytes takes a non-empty (rows, cols) array. Received: shape {index.shape}")
    if len(table) > 255 or int(index.max()) > len(table):
        raise ValueError(f"indices run from 0 (transparent) to {len(table)}. Received: max {int(index.max())}")
    rows, cols = index.shape
    scanlines = np.zeros((rows, 1 + cols), dtype=np.uint8)
    scanlines[:, 1:] = index
    palette = np.zeros((len(table) + 1, 3), dtype=np.uint8)
    palette[1:] = table
    header = struct.pack(">IIBBBBB", cols, rows, 8, 3, 0, 0, 0)  # 8 bits per pixel, indexed colour
    return (PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"PLTE", palette.tobytes())
            + _chunk(b"tRNS", b"\x00") + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)) + _chunk(b"IEND", b""))


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_data_uri(z: np.ndarray) -> str:
    """``z`` coloured (Viridis, NaN transparent) as a ``data:image/png;base64,…`` URI (a palette PNG)."""
    return "data:image/png;base64," + base64.b64encode(png_palette_bytes(colour_indices(z))).decode("ascii")
