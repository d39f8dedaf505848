"""The benchmark rows are valid settings, and the results table is written from results."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
import time

import numpy as np

import pytest

import workbench as wb

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


def _load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_rows_are_valid_configs():
    rows = _load("rows")
    assert set(rows.ROWS) == {"lenet5-mnist", "lenet5-fashion", "mobilenet-fashion", "lenet5-mnist-kmeans16",
                              "lenet5-mnist-int4-kmeans8"}
    assert len(rows.SEEDS) >= 3
    assert rows.ROWS["lenet5-mnist-kmeans16"]["prune"] == rows.ROWS["lenet5-mnist"]["prune"]  # ablations: quant only
    for spec in rows.ROWS.values():
        wb.PruneConfig(**spec["prune"])
        wb.QuantConfig(**spec["quant"])
        for stage in ("baseline", "finetune", "qat"):
            wb.TrainConfig(**spec[stage])
        assert spec["baseline"]["patience"] > 0, "baselines train to convergence (early stopping on validation)"
        assert spec["goal"]["ratio"] >= 10


def _fake_run(seed, baseline, int8, gzip_bytes, p_value=0.5):
    n = 2000
    return {"seed": seed, "accuracy": {"baseline": baseline, "int8": int8}, "delta_points": 100 * (int8 - baseline),
            "test": {"baseline": {"accuracy": baseline, "ci95": [baseline - 0.01, baseline + 0.01], "n": n},
                     "int8": {"accuracy": int8, "ci95": [int8 - 0.01, int8 + 0.01], "n": n},
                     "delta": {"delta_points": 100 * (int8 - baseline), "p_value": p_value}},
            "sizes": {"fp32_bytes": 1724320, "gzip_bytes": gzip_bytes, "entropy_bytes": gzip_bytes * 0.8,
                      "compression_ratio": 1724320 / gzip_bytes},
            "baseline_training": {"epochs": 12 + seed, "best_epoch": 7, "rule": "early stopping"},
            "seconds": {"total": 100.0}}


def test_summary_and_tables_are_computed_from_the_runs():
    tables = _load("tables")
    runs = [_fake_run(0, 0.980, 0.978, 40000), _fake_run(1, 0.982, 0.977, 41000), _fake_run(2, 0.978, 0.979, 39000)]
    summary = tables.summarise(runs)
    assert summary["delta_points"]["mean"] == pytest.approx(np.mean([-0.2, -0.5, 0.1]))
    assert summary["delta_points"]["std"] == pytest.approx(np.std([-0.2, -0.5, 0.1], ddof=1))
    assert summary["ratio"]["mean"] == pytest.approx(np.mean([1724320 / g for g in (40000, 41000, 39000)]))
    result = {"summary": summary, "seeds": [0, 1, 2], "runs": runs, "spec": {"model": "lenet5"},
              "dataset": {"name": "mnist", "source": "bundled (x)", "train": 7200, "validation": 800, "test": 2000}}
    goal = {"ratio": 40, "max_loss_points": 0.3, "min_baseline": 0.95}
    assert tables.goal_met(result, goal)  # mean Δ -0.2 >= -0.3
    assert not tables.goal_met(result, {**goal, "max_loss_points": 0.1})
    assert not tables.goal_met(result, {**goal, "ratio": 50})
    line = tables.results_table({"lenet5-mnist": result})[2]
    assert line.startswith("| lenet5-mnist | bundled, 7,200/800/2,000 | 3 | 13 (12–14) |")
    assert "98.00 ± 0.20%" in line and "**43.1×**" in line and "-0.20 ± 0.30" in line and "✓" in line


def test_generated_files_match_the_results():
    """README's table, RESULTS.md and the package's summary are written from bench/results, never typed in."""
    tables = _load("tables")
    for path, text in tables.generated_files().items():
        assert path.read_text() == text, f"{path} is stale: run .venv/bin/python bench/tables.py"


def test_paper_app_reads_the_package_summary():
    from workbench.published import bench_rows

    tables = _load("tables")
    assert bench_rows() == json.loads(tables.package_summary(tables.load_results()))["rows"]


@pytest.mark.slow
def test_throughput_is_measured(trained_lenet, small_mnist):
    run = _load("run")
    data, _ = wb.export_tflite(wb.quantize_model(trained_lenet, calibration_data=small_mnist.x_train[:128])[0],
                               small_mnist.x_train[:50])
    fast = run.images_per_second(data, small_mnist.x_test, batch=8, seconds=0.3)
    start = time.perf_counter()
    for _ in range(20):
        wb.evaluate_tflite(data, small_mnist.x_test[:8], small_mnist.y_test[:8])
    # Same order of magnitude as timing the interpreter by hand (no fixed-time assertion: machines are shared).
    by_hand = 20 * 8 / (time.perf_counter() - start)
    assert fast > 0 and 0.02 < fast / by_hand < 200
