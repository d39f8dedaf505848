"""Every lab and app notebook executes headless with small parameters (papermill), and is committed clean.

The committed ``.ipynb`` files are the one source of truth (no generator): a teacher edits them
in JupyterLab; this test fails when one carries outputs or is not in nbformat's canonical form.
"""

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
    "notebooks/05_mobilenet_fashion.ipynb": {"LIMIT": 1000, "VALIDATION": 300, "TEST": 300, "EPOCHS": 1,
                                              "FT_EPOCHS": 1},
    "apps/compression_studio.ipynb": {},
    "apps/paper_reproduction.ipynb": {},
}

pytestmark = pytest.mark.slow


def _notebooks():
    return sorted(list(ROOT.glob("notebooks/*.ipynb")) + list(ROOT.glob("apps/*.ipynb")))


@pytest.mark.parametrize("path", [str(p.relative_to(ROOT)) for p in _notebooks()])
def test_notebook_is_committed_clean_and_canonical(path):
    import nbformat

    text = (ROOT / path).read_text()
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.outputs for c in code] == [[] for _ in code], f"{path} carries outputs: clear them before committing"
    assert all(c.execution_count is None for c in code), f"{path} carries execution counts"
    ids = [c.get("id") for c in nb.cells]
    assert None not in ids and len(set(ids)) == len(ids), f"{path}: every cell needs a stable, unique id"
    assert text == nbformat.writes(nb) + "\n", f"{path} is not in canonical form: re-save it with nbformat.write"


def test_the_clean_check_catches_an_output(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    assert [c.outputs for c in nb.cells if c.cell_type == "code"] != [[]]


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
    for cell in checks:
        text = json.dumps(cell.get("outputs", []), ensure_ascii=False)
        if "= None" in "".join(cell["source"]):  # an exercise left blank must never pass
            assert "✗" in text and "✓" not in text, f"a blank answer passed a self-check in {path}"
        else:  # a verdict on the run itself (e.g. "did it beat the paper?") says which
            assert ("✓" in text) != ("✗" in text), f"self-check cell without one verdict in {path}"
    if path.startswith("notebooks/"):
        assert checks, f"{path} has no self-check cell"
