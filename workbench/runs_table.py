"""Tables of compression runs for comparison (DataFrames; the UI renders them)."""

from __future__ import annotations

import pandas as pd

from workbench.anchors import anchors_for

COLUMNS = ["label", "model", "dataset", "sparsity", "int8_accuracy", "delta_points", "fp32_bytes", "tflite_bytes",
           "gzip_bytes", "entropy_bytes", "compression_ratio"]


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """One row per run with the measured figures."""
    return pd.DataFrame([{k: r.get(k) for k in COLUMNS} for r in runs], columns=COLUMNS)


def comparison_frame(runs: list[dict], model: str = "lenet5") -> pd.DataFrame:
    """Runs next to the published anchors for the same model family."""
    ours = runs_frame(runs).assign(source="this workbench")
    refs = pd.DataFrame([{"label": a["label"], "model": a["model"], "fp32_bytes": a["fp32_bytes"],
                          "gzip_bytes": a["bytes"], "compression_ratio": a["ratio"], "delta_points": a["delta_points"],
                          "source": "published"} for a in anchors_for(model)])
    return pd.concat([refs, ours], ignore_index=True)[["source", *COLUMNS]]
