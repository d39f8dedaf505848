"""The package works installed from a wheel, not only from this source tree (the paper app's data included)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import venv

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

PROBE = """
import json, pathlib, workbench
from workbench.published import bench_rows
from workbench.widgets.paper import our_table, paper_app
from workbench.baselines import find_baseline
from workbench.data import load_dataset
app = paper_app()
data = load_dataset("mnist", sources=("bundled",))
print(json.dumps({"file": workbench.__file__, "rows": bench_rows(), "table": len(our_table()),
                  "tables_html": "This workbench" in app.tables.value,
                  "baseline": str(find_baseline("lenet5", data)), "train": len(data.y_train)}))
"""


def test_wheel_installs_and_the_paper_app_reads_its_results(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "workbench", src / "workbench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(dist), str(src)], check=True, capture_output=True, env={**os.environ,
                                                                                    "PIP_NO_INDEX": "1"})
    wheel = next(dist.glob("cnn_compression_workbench-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    site = next(env_dir.glob("lib/python*/site-packages"))
    # Dependencies come from the project's environment; the workbench itself only from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site),
                    str(wheel)], check=True, capture_output=True)
    python = env_dir / "bin" / "python"
    out = subprocess.run([str(python), "-c", PROBE], check=True, capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "WORKBENCH_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
                              "WORKBENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": ""})
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["file"].startswith(str(site)), "imported the source tree, not the installed wheel"
    expected = json.loads((ROOT / "workbench" / "data" / "bench_summary.json").read_text())["rows"]
    assert probe["rows"] == expected and probe["table"] == len(expected) and probe["tables_html"]
    assert probe["baseline"].startswith(str(site)) and probe["train"] == 6000
