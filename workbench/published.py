"""This workbench's published benchmark figures, shipped inside the package.

``bench/tables.py`` writes ``workbench/data/bench_summary.json`` from ``bench/results/*.json``
(tests check it is current), so the paper app shows them from an installed wheel too.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

SUMMARY = "bench_summary.json"


@functools.lru_cache(maxsize=1)
def _summary() -> dict:
    path = resources.files("workbench") / "data" / SUMMARY
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, OSError, json.JSONDecodeError):
        return {}


def measured_anchors() -> list[dict]:
    """Reference pipelines run here on the same splits (tfmot): label, model, fp32/gzip bytes, ratio, delta."""
    return [dict(a) for a in _summary().get("anchors", [])]


def bench_rows() -> list[dict]:
    """One dict per benchmark row: row, model, data, seeds, baseline/int8 accuracy (mean, std), delta, bytes, ratio.

    Empty when no summary ships (a build made before any benchmark ran).
    """
    return [dict(r) for r in _summary().get("rows", [])]
