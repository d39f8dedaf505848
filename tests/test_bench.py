"""The benchmark rows are valid settings, and the results table is written from results."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

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
    rows = _load("rows").ROWS
    assert set(rows) == {"lenet5-mnist", "lenet5-fashion", "mobilenet-fashion", "lenet5-mnist-kmeans16",
                         "lenet5-mnist-int4-kmeans8"}
    assert rows["lenet5-mnist-kmeans16"]["prune"] == rows["lenet5-mnist"]["prune"]  # ablations change quant only
    for spec in rows.values():
        wb.PruneConfig(**spec["prune"])
        wb.QuantConfig(**spec["quant"])
        for stage in ("baseline", "finetune", "qat"):
            wb.TrainConfig(**spec[stage])
        assert spec["goal"]["ratio"] >= 10


@pytest.mark.slow
def test_throughput_and_table(trained_lenet, small_mnist):
    run = _load("run")
    data, _ = wb.export_tflite(wb.quantize_model(trained_lenet, calibration_data=small_mnist.x_train[:128])[0],
                               small_mnist.x_train[:50])
    assert run.images_per_second(data, small_mnist.x_test, batch=8, seconds=0.3) > 0
    result = {"accuracy": {"baseline": 0.98, "int8": 0.979}, "dataset": {"source": "bundled (x)", "train": 8000,
                                                                           "test": 2000},
              "sizes": {"fp32_bytes": 1724320, "tflite_bytes": 200000, "gzip_bytes": 40000, "entropy_bytes": 30000,
                        "compression_ratio": 43.108}, "spec": {"goal": {"ratio": 40, "max_loss_points": 0.3, "min_baseline": 0.95},
                                                               "prune": {}, "quant": {}, "finetune": {}, "qat": {}},
              "goal_met": True, "delta_points": -0.1, "seconds": {"total": 100},
              "speed": {"batch1": {"int8_over_fp32": 1.5}, "batch64": {"int8_over_fp32": 2.0}}}
    table = run.write_markdown({"lenet5-mnist": result})
    assert "| lenet5-mnist | bundled" in table and "**43.1×**" in table and "✓" in table and "-0.10" in table
    result["accuracy"]["baseline"] = 0.10  # a baseline that never learned cannot meet a goal
    assert "✗" in run.write_markdown({"lenet5-mnist": result})
