"""Published reference points for comparison plots and tables.

Sizes in bytes as the sources report them; accuracy changes in points (percent). Sources:
- the seed paper (2021, TensorFlow): LeNet 1.64 MB -> 0.36 MB at -1.6 points; MobileNet 16.9 MB -> 3.1 MB at -3;
- Deep Compression (Han, Mao, Dally, ICLR 2016), Table 1: LeNet-5 1,720 KB -> 44 KB (39x), error 0.80% -> 0.74%;
- tfmot's documentation: MobileNet v1 224 on ImageNet, 50% pruning + PQAT, 2,869,600 bytes zipped, 70.99% -> 70.29%;
- "tfmot ... here": tfmot's prune -> PQAT -> int8 pipeline run on the workbench's own splits by
  ``bench/anchors/tfmot_lenet5.py`` (``make anchors``, its own venv); its results ship in the package's
  benchmark summary (``workbench.published``) and are added to these points, never typed in.
"""

from __future__ import annotations

from workbench import published

ANCHORS = (
    {"label": "Seed paper (2021): LeNet-5", "model": "lenet5", "fp32_bytes": 1_640_000, "bytes": 360_000,
     "ratio": 1.64 / 0.36, "delta_points": -1.6},
    {"label": "Deep Compression: LeNet-5", "model": "lenet5", "fp32_bytes": 1_720_000, "bytes": 44_000,
     "ratio": 39.0, "delta_points": +0.06},
    {"label": "Seed paper (2021): MobileNet v1", "model": "mobilenet_v1", "fp32_bytes": 16_900_000,
     "bytes": 3_100_000, "ratio": 16.9 / 3.1, "delta_points": -3.0},
    {"label": "tfmot PQAT: MobileNet v1 (ImageNet)", "model": "mobilenet_v1", "fp32_bytes": 16_900_000,
     "bytes": 2_869_600, "ratio": 16.9e6 / 2_869_600, "delta_points": -0.7},
)


def measured_anchors() -> tuple[dict, ...]:
    """Reference runs made here (tfmot on the workbench's splits), from the shipped benchmark summary."""
    return tuple({"label": a["label"], "model": a["model"], "fp32_bytes": a["fp32_bytes"], "bytes": a["gzip_bytes"],
                  "ratio": a["ratio"], "delta_points": a["delta_points"]} for a in published.measured_anchors())


def all_anchors() -> tuple[dict, ...]:
    """Published points and the reference runs measured here."""
    return ANCHORS + measured_anchors()


def anchors_for(model: str) -> list[dict]:
    """The reference points for one model family ("lenet5" or "mobilenet_v1")."""
    family = "mobilenet_v1" if model.startswith("mobilenet") else "lenet5"
    return [dict(a) for a in all_anchors() if a["model"] == family]
