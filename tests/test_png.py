"""The kernel map's PNG encoding, checked against Pillow's decoder and plotly's colour scale."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.colors
import pytest
from PIL import Image

from workbench.widgets.views.png import VIRIDIS, colour_map, png_data_uri, png_palette_bytes


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def test_palette_png_round_trips_through_pillow(rng):
    index = rng.integers(0, 11, size=(7, 13), dtype=np.uint8)  # 0: transparent, 1..10: the table's colours
    rgba = np.zeros((7, 13, 4), np.uint8)
    rgba[index > 0, :3], rgba[index > 0, 3] = VIRIDIS[:10][index[index > 0] - 1], 255
    assert np.array_equal(_decode(png_palette_bytes(index, VIRIDIS[:10])), rgba)


def test_colour_map_spans_the_scale_and_leaves_nan_transparent():
    z = np.array([[0.5, np.nan, 2.5], [1.5, 0.5, np.nan]])
    rgba = colour_map(z)
    assert np.array_equal(rgba[..., 3] == 0, np.isnan(z)) and np.all(rgba[~np.isnan(z), 3] == 255)
    hex_colour = lambda c: "#" + "".join(f"{v:02x}" for v in c)  # noqa: E731
    stops = plotly.colors.sequential.Viridis
    assert hex_colour(rgba[0, 0, :3]) == stops[0] and hex_colour(rgba[0, 2, :3]) == stops[-1]  # min, max
    assert np.array_equal(rgba[1, 0, :3], VIRIDIS[127])  # the middle value: the middle of the table
    assert np.all(colour_map(np.full((2, 2), np.nan))[..., 3] == 0)  # all pruned: all blank
    assert np.array_equal(colour_map(np.ones((1, 2)))[..., :3], np.tile(VIRIDIS[0], (1, 2, 1)))  # one value


def test_data_uri_decodes_to_the_colour_map(rng):
    z = rng.random((128, 400))
    z[rng.random(z.shape) < 0.9] = np.nan
    uri = png_data_uri(z)
    assert uri.startswith("data:image/png;base64,")
    assert np.array_equal(_decode(base64.b64decode(uri.split(",", 1)[1])), colour_map(z))
    assert len(uri) < 0.2 * len(str(z.tolist()))  # what the page receives, against a Heatmap's JSON
    dense = rng.random((120, 400))  # fc1 of LeNet-5, unpruned: the palette PNG is much smaller than RGBA's
    as_rgba = io.BytesIO()
    Image.fromarray(colour_map(dense), "RGBA").save(as_rgba, "PNG", compress_level=6)
    rgba_uri = "data:image/png;base64," + base64.b64encode(as_rgba.getvalue()).decode("ascii")
    assert len(png_data_uri(dense)) < 0.6 * len(rgba_uri)
    assert np.array_equal(_decode(base64.b64decode(png_data_uri(dense).split(",", 1)[1])), colour_map(dense))


def test_palette_png_refuses_bad_indices():
    with pytest.raises(ValueError, match="to 10. Received: max 255"):
        png_palette_bytes(np.full((2, 2), 255, np.uint8), VIRIDIS[:10])
    with pytest.raises(ValueError, match="Received: shape"):
        png_palette_bytes(np.zeros((0, 3), np.uint8))


@pytest.mark.parametrize("shape", [(0, 3), (3, 3, 4), (5,)])
def test_palette_png_refuses_what_is_not_an_index_image(shape):
    with pytest.raises(ValueError, match="Received: shape"):
        png_palette_bytes(np.zeros(shape, np.uint8))
