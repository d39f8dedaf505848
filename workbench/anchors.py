"""Published reference points (see ../shared/docs/anchors.md) for comparison plots and tables.

Sizes in bytes as the sources report them; accuracy changes in points (percent).
"""

from __future__ import annotations

ANCHORS = (
    {"label": "Seed paper (2021): LeNet-5", "model": "lenet5", "fp32_bytes": 1_640_000, "bytes": 360_000,
     "ratio": 1.64 / 0.36, "delta_points": -1.6},
    {"label": "Deep Compression: LeNet-5", "model": "lenet5", "fp32_bytes": 1_720_000, "bytes": 44_000,
     "ratio": 39.0, "delta_points": +0.06},
    {"label": "tfmot PQAT here: LeNet-5, 90% sparse", "model": "lenet5", "fp32_bytes": 1_724_320,
     "bytes": int(1_724_320 / 21), "ratio": 21.0, "delta_points": -0.45},
    {"label": "tfmot PQAT here: LeNet-5, 95% sparse", "model": "lenet5", "fp32_bytes": 1_724_320,
     "bytes": int(1_724_320 / 36), "ratio": 36.0, "delta_points": -2.05},
    {"label": "Seed paper (2021): MobileNet v1", "model": "mobilenet_v1", "fp32_bytes": 16_900_000,
     "bytes": 3_100_000, "ratio": 16.9 / 3.1, "delta_points": -3.0},
    {"label": "tfmot PQAT: MobileNet v1 (ImageNet)", "model": "mobilenet_v1", "fp32_bytes": 16_900_000,
     "bytes": 2_869_600, "ratio": 16.9e6 / 2_869_600, "delta_points": -0.7},
)


def anchors_for(model: str) -> list[dict]:
    """The reference points for one model family ("lenet5" or "mobilenet_v1")."""
    family = "mobilenet_v1" if model.startswith("mobilenet") else "lenet5"
    return [dict(a) for a in ANCHORS if a["model"] == family]
