"""Tables of compression runs for comparison (DataFrames; the UI renders them)."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["label", "model", "dataset", "qat", "split", "sparsity", "int8_accuracy", "delta_points", "fp32_bytes",
           "tflite_bytes", "gzip_bytes", "entropy_bytes", "compression_ratio", "export_target", "latency_ms", "speedup",
           "micro_arena_bytes"]


def _micro_arena(run: dict):
    """The TensorFlow Lite Micro arena (bytes) the run's model needs, 'does not run', or None if not tried."""
    micro = run.get("micro")
    if not micro:
        return None
    return int(micro["arena_bytes"]) if micro.get("runs") else "does not run"


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """One row per run with the measured figures."""
    return pd.DataFrame([{**{k: r.get(k) for k in COLUMNS}, "micro_arena_bytes": _micro_arena(r)} for r in runs],
                        columns=COLUMNS)
