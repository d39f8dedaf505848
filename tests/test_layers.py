"""Imports run one way down the layers of the package (README, "Layers"); a test parses every import."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Lowest first. A module may import its own layer's units and any unit of a lower layer, never a higher one,
# and not even from inside a function.
LAYERS = (
    ("errors", "io", "config", "_quiet", "stats", "anchors", "published", "archives"),
    ("nn",),
    ("data", "models"),
    ("pruning",),
    ("quantization",),
    ("export", "loading"),
    ("metrics",),
    ("train",),
    ("stages", "breakdown", "report", "labs", "runs_table"),
    ("pipeline", "baselines"),
    ("search",),
    ("cli", "widgets"),
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """'workbench.pruning.api' -> 'pruning'; 'workbench.stages' -> 'stages'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def workbench_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import of a workbench module in a file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("workbench.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "workbench":
                found += [(node.lineno, f"workbench.{a.name}") for a in node.names]
            elif node.module.startswith("workbench."):
                found.append((node.lineno, node.module))
    return found


def upward_imports(root: pathlib.Path = ROOT / "workbench") -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        source = unit_of(module_name(path))
        if source == "":  # the package's __init__ gathers the public API from every layer
            continue
        for line, target in workbench_imports(path):
            dest = unit_of(target)
            if dest in RANK and RANK[dest] > RANK[source]:
                problems.append(f"{path.relative_to(ROOT)}:{line} ({source}, layer {RANK[source]}) imports "
                                f"{target} ({dest}, layer {RANK[dest]})")
    return problems


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(p)) for p in (ROOT / "workbench").rglob("*.py")} - {""}
    assert units - set(RANK) == set(), "add new modules to LAYERS (and the README's layout)"


def test_imports_never_run_up_the_layers():
    assert upward_imports() == []


def test_the_rule_catches_an_upward_import(tmp_path):
    package = tmp_path / "workbench"
    (package / "pruning").mkdir(parents=True)
    (package / "pruning" / "x.py").write_text("def f():\n    from workbench.train import fit\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert upward_imports(package) == ["workbench/pruning/x.py:2 (pruning, layer 3) imports workbench.train "
                                           "(train, layer 7)"]
    finally:
        ROOT = saved


def test_the_readme_documents_the_layers():
    readme = (ROOT / "README.md").read_text()
    line = " → ".join("/".join(units) for units in LAYERS)
    assert line in readme
