"""Tables of compression runs for comparison (DataFrames; the UI renders them)."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["label", "model", "dataset", "qat", "split", "sparsity", "int8_accuracy", "delta_points", "fp32_bytes",
           "tflite_bytes", "gzip_bytes", "entropy_bytes", "compression_ratio"]


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """One row per run with the measured figures."""
    return pd.DataFrame([{k: r.get(k) for k in COLUMNS} for r in runs], columns=COLUMNS)
