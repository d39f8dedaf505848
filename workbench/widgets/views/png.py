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


VIRIDIS = colour_table()


def colour_map(z: np.ndarray, table: np.ndarray = VIRIDIS) -> np.ndarray:
    """(rows, cols, 4) uint8 RGBA: finite cells coloured from their min to their max, NaN cells transparent."""
    z = np.asarray(z, dtype=np.float64)
    finite = np.isfinite(z)
    rgba = np.zeros(z.shape + (4,), dtype=np.uint8)
    if finite.any():
        low, high = float(z[finite].min()), float(z[finite].max())
        scaled = (z[finite] - low) / (high - low) if high > low else np.zeros(int(finite.sum()))
        rgba[finite, :3] = table[np.clip(np.round(scaled * (len(table) - 1)), 0, len(table) - 1).astype(int)]
        rgba[finite, 3] = 255
    return rgba


def png_bytes(rgba: np.ndarray) -> bytes:
    """An RGBA uint8 image (rows, cols, 4) as PNG bytes (8-bit colour with alpha, no filtering)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or not rgba.shape[0] or not rgba.shape[1]:
        raise ValueError(f"png_bytes takes a non-empty (rows, cols, 4) array. Received: shape {rgba.shape}")
    rows, cols = rgba.shape[:2]
    scanlines = np.zeros((rows, 1 + 4 * cols), dtype=np.uint8)  # each row: filter type 0, then its pixels
    scanlines[:, 1:] = rgba.reshape(rows, -1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", cols, rows, 8, 6, 0, 0, 0)  # 8 bits per channel, RGBA
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)) + chunk(
        b"IEND", b"")


def png_data_uri(z: np.ndarray) -> str:
    """``z`` coloured (Viridis, NaN transparent) as a ``data:image/png;base64,…`` URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(colour_map(z))).decode("ascii")
