"""Every lab and app notebook executes headless with small parameters (papermill)."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMALL = {
    "notebooks/01_pruning_basics.ipynb": {"EPOCHS": 1, "LIMIT": 1000},
    "notebooks/02_sensitivity_and_schedules.ipynb": {"EVAL": 300, "LIMIT": 1000, "EPOCHS": 1,
                                                      "SPARSITIES": [0.0, 0.9]},
    "notebooks/03_quantization.ipynb": {"LIMIT": 1000, "EPOCHS": 1},
    "notebooks/04_full_pipeline.ipynb": {"EPOCHS": 1, "QAT_EPOCHS": 1},
    "notebooks/05_mobilenet_fashion.ipynb": {"LIMIT": 1000, "TEST": 300, "EPOCHS": 1, "FT_EPOCHS": 1},
    "apps/compression_studio.ipynb": {},
    "apps/paper_reproduction.ipynb": {},
}

pytestmark = pytest.mark.slow


def test_every_notebook_is_listed():
    found = {str(p.relative_to(ROOT)) for p in list(ROOT.glob("notebooks/*.ipynb")) + list(ROOT.glob("apps/*.ipynb"))}
    assert found == set(SMALL)


@pytest.mark.parametrize("path", sorted(SMALL))
def test_notebook_runs(path, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    out = tmp_path / pathlib.Path(path).name
    papermill.execute_notebook(str(ROOT / path), str(out), parameters=SMALL[path], cwd=str((ROOT / path).parent),
                               kernel_name="python3", progress_bar=False, execution_timeout=600)
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    checks = [c for c in nb["cells"] if c["cell_type"] == "code" and "wb.labs.check" in "".join(c["source"])]
    for cell in checks:  # every self-check cell says ✓ or ✗
        text = json.dumps(cell.get("outputs", []), ensure_ascii=False)
        assert "✓" in text or "✗" in text, f"self-check cell without a verdict in {path}"
    if path.startswith("notebooks/"):
        assert checks, f"{path} has no self-check cell"
