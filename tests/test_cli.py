"""The `workbench` command: options do what they say, and are checked before any training."""

from __future__ import annotations

import json
import time

import keras
import numpy as np
import pytest

from workbench import cli

FAST = ["--limit", "400", "--baseline-epochs", "1", "--patience", "0", "--qat-epochs", "0", "--quiet"]


def _code_and_err(capsys, argv):
    code = cli.main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["compress", "--layer-sparsity", "fc1:0.5"], "name=value pairs"),
    (["compress", "--layer-sparsity", "fc1=half"], "is not a number"),
    (["compress", "--layer-sparsity", "fc1=0.5", "--target", "global"], "cannot go with --target global"),
    (["compress", "--layer-sparsity", "nosuch=0.5"], "names ['nosuch']"),
    (["compress", "--layer-bits", "fc9=4"], "names ['fc9']"),
    (["compress", "--dataset", "nosuch"], "load_npz(path)"),
])
def test_bad_settings_are_refused_with_status_2_before_any_training(capsys, argv, message):
    start = time.perf_counter()
    code, err = _code_and_err(capsys, argv)
    assert code == 2 and message in err, err
    assert time.perf_counter() - start < 15  # no baseline was trained (that takes ~30 s here)


@pytest.mark.parametrize("out", ["existing-file", "/proc/workbench-x", "/sys/workbench-x"])
def test_bad_output_folders_are_refused_before_training(capsys, tmp_path, out):
    if out == "existing-file":
        out = str(tmp_path / "report.json")
        (tmp_path / "report.json").write_text("{}")
    start = time.perf_counter()
    code, err = _code_and_err(capsys, ["compress", "--out", out])
    assert code == 2 and "output folder" in err and f"Received: out={out!r}" in err, err
    assert time.perf_counter() - start < 15


@pytest.mark.slow
def test_epochs_0_prunes_to_the_targets_and_layer_sparsity_implies_per_layer(capsys, tmp_path):
    out = tmp_path / "out"
    code = cli.main(["compress", "--epochs", "0", "--layer-sparsity", "fc1=0.1", "--sparsity", "0.7",
                     "--out", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["prune"]["target"] == "per_layer"
    assert report["sparsity"]["layers"] == pytest.approx({"conv1": 0.7, "conv2": 0.7, "fc1": 0.1, "fc2": 0.7},
                                                         abs=1e-3)
    capsys.readouterr()
    assert cli.main(["info", str(out / "model_pruned.keras")]) == 0
    assert "431,080 parameters, 1,724,320 fp32 bytes" in capsys.readouterr().out  # masks are not parameters
    upper = tmp_path / "REAL.TFLITE"
    upper.write_bytes((out / "model_int8.tflite").read_bytes())
    assert cli.main(["info", str(upper)]) == 0 and "gzip -9" in capsys.readouterr().out


@pytest.mark.slow
def test_user_data_from_an_npz_and_a_class_count_check_on_evaluate(capsys, tmp_path, small_mnist):
    from workbench.export.tflite import convert_float

    path = tmp_path / "mine.npz"
    np.savez(path, images=(small_mnist.x_train[:600, ..., 0] * 255).astype(np.uint8), labels=small_mnist.y_train[:600])
    out = tmp_path / "out"
    assert cli.main(["compress", "--dataset", str(path), "--epochs", "0", "--out", str(out), *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["name"] == "mine" and "user file" in report["dataset"]["source"]
    five = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    (tmp_path / "five.tflite").write_bytes(convert_float(five))
    capsys.readouterr()
    code, err = _code_and_err(capsys, ["evaluate", str(tmp_path / "five.tflite"), "--dataset", str(path)])
    assert code == 2 and "5 outputs" in err and "10 classes" in err
