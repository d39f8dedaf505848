"""End to end: compress() and the workbench command on a small subset of the bundled MNIST."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from workbench import cli
from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError
from workbench.export import evaluate_tflite
from workbench.metrics.tflite_tensors import weight_tensors
from workbench.pipeline import compress
from workbench.report import CompressionReport

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(small_mnist, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    stages = []
    report = compress("lenet5", small_mnist, prune=PruneConfig(sparsity=0.9, schedule="polynomial"),
                      baseline=TrainConfig(epochs=5, learning_rate=2e-3, patience=1), finetune=TrainConfig(epochs=2),
                      qat=TrainConfig(epochs=1, learning_rate=1e-4), out_dir=out,
                      on_stage=lambda stage, info: stages.append(stage))
    return report, out, stages


def test_int8_artifact_within_one_point_of_qat_and_ratio_above_10x(run, small_mnist):
    report, out, stages = run
    assert stages == ["data", "baseline", "prune", "finetune", "qat", "export", "measure", "done"]
    assert abs(report.validation["int8"] - report.validation["qat"]) <= 0.01
    assert report.accuracy["int8"] > 0.9
    assert report.compression_ratio > 10
    assert report.sparsity["overall"] == pytest.approx(0.9, abs=1e-3)
    # The reported int8 accuracy is the artifact's on the test split, recomputed here from the file.
    acc = evaluate_tflite(out / "model_int8.tflite", small_mnist.x_test, small_mnist.y_test)
    assert acc == pytest.approx(report.accuracy["int8"])
    # ... and its validation accuracy is the same file on the validation split.
    val = evaluate_tflite(out / "model_int8.tflite", small_mnist.x_val, small_mnist.y_val)
    assert val == pytest.approx(report.validation["int8"])


def test_test_figures_carry_wilson_intervals_and_a_paired_test(run, small_mnist):
    from workbench.export.tflite import predict_tflite
    from workbench.nn.evaluate import correct_predictions

    report, out, _ = run
    n = len(small_mnist.y_test)
    int8 = predict_tflite(out / "model_int8.tflite", small_mnist.x_test).argmax(-1) == small_mnist.y_test
    base = correct_predictions(report.artifacts["baseline"], small_mnist.x_test, small_mnist.y_test)
    k = int(int8.sum())
    p, z = k / n, 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert report.test["int8"]["n"] == n
    assert report.test["int8"]["ci95"] == pytest.approx([centre - half, centre + half])
    assert report.test["baseline"]["accuracy"] == pytest.approx(base.mean()) == report.accuracy["baseline"]
    only_base, only_int8 = int((base & ~int8).sum()), int((~base & int8).sum())
    delta = report.test["delta"]
    assert (delta["only_a"], delta["only_b"]) == (only_base, only_int8)
    assert delta["delta_points"] == pytest.approx(100 * (int8.mean() - base.mean()))
    assert 0.0 < delta["p_value"] <= 1.0


def test_baseline_stops_early_on_validation_and_says_so(run):
    report, _, _ = run
    b = report.baseline_training
    assert b["trained_here"] and "early stopping on validation accuracy: patience 1, at most 5" in b["rule"]
    assert 1 <= b["best_epoch"] <= b["epochs"] <= 5
    assert report.dataset["validation"] == 2000 and "stratified" in report.dataset["validation_rule"]


def test_outputs_and_report_json(run):
    report, out, _ = run
    assert sorted(p.name for p in out.iterdir()) == ["model_int8.tflite", "model_pruned.keras", "report.json"]
    data = json.loads((out / "report.json").read_text())
    assert data["accuracy"] == report.accuracy and set(data["accuracy"]) == {"baseline", "int8"}
    assert set(data["validation"]) == {"baseline", "one_shot", "pruned", "qat", "int8"}
    assert data["sizes"]["gzip_bytes"] == len(__import__("gzip").compress((out / "model_int8.tflite").read_bytes(),
                                                                          compresslevel=9, mtime=0))
    assert data["sizes"]["tflite_bytes"] == (out / "model_int8.tflite").stat().st_size
    assert data["sizes"]["compression_ratio"] == pytest.approx(1724320 / data["sizes"]["gzip_bytes"])
    assert data["sizes"]["fp32_bytes"] == 1724320
    assert set(data["sparsity"]["layers"]) == {"conv1", "conv2", "fc1", "fc2"}
    assert data["settings"]["prune"]["sparsity"] == 0.9 and "bundled MNIST" in data["dataset"]["source"]
    assert set(data["seconds"]) == {"data", "baseline", "prune", "finetune", "qat", "export", "measure_test"}
    assert data["micro"]["runs"] and data["micro"]["arena_bytes"] > 1024  # it ran on TensorFlow Lite Micro too
    rows = dict(report.summary_rows())
    assert "TensorFlow Lite Micro" in rows and "of all 431,080 weights" in rows["sparsity"]
    assert CompressionReport.from_dict(data).to_dict() == data


def test_failure_while_writing_leaves_no_files(small_mnist, tmp_path, monkeypatch, trained_lenet):
    import workbench.pipeline as pipeline

    def broken_save(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("keras.Model.save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        pipeline.compress(trained_lenet, small_mnist.subset(train=256, test=128), finetune=TrainConfig(epochs=0),
                          qat=TrainConfig(epochs=0), out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing was published
    assert [p.name for p in tmp_path.iterdir()] == [".out.runs"] and not list((tmp_path / ".out.runs").iterdir())


def test_stop_event_ends_training_early(trained_lenet, small_mnist):
    stop = threading.Event()
    records = []

    def on_record(record):
        records.append(record)
        if record["phase"] == "finetune":
            stop.set()

    report = compress(trained_lenet, small_mnist, prune=PruneConfig(sparsity=0.5),
                      finetune=TrainConfig(epochs=5), qat=TrainConfig(epochs=1), on_record=on_record, stop=stop)
    assert report.stopped
    assert max(r["step"] for r in records if r["phase"] == "finetune") < 5 * 24


def test_model_and_data_mismatch_is_refused(trained_lenet):
    from workbench.data import Dataset
    from workbench.errors import ConfigError

    data = Dataset("tiny", "test", np.zeros((8, 16, 16, 1), np.float32), np.arange(8) % 2,
                   np.zeros((4, 16, 16, 1), np.float32), np.arange(4) % 2, ["a", "b"], (16, 16, 1))
    with pytest.raises(ConfigError, match="takes"):
        compress(trained_lenet, data)


def test_cli_compress_evaluate_info(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli.main(["compress", "--model", "lenet5", "--dataset", "mnist", "--sparsity", "0.8", "--bits", "8",
                   "--limit", "1500", "--baseline-epochs", "2", "--epochs", "1", "--qat-epochs", "1",
                   "--layer-bits", "fc1=4", "--layer-clusters", "fc2=8", "--out", str(out), "--quiet",
                   "--target-export", "speed", "--speed"])
    printed = capsys.readouterr().out
    assert rc == 0 and "compression ratio" in printed and "fc1" in printed
    assert "speed (LiteRT, this machine)" in printed and "int8 (speed) batch 1: p50" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["export_target"] == "speed" and report["speed"]["int8"]["batch1"]["runs"] == 200
    fc1 = [t for t in weight_tensors((out / "model_int8.tflite").read_bytes()) if t.shape == (500, 800)][0]
    assert not fc1.packed_int4 and np.unique(fc1.values).size <= 15, "4-bit values, stored as int8 for speed"
    assert report["settings"]["quant"]["layer_weight_bits"] == {"fc1": 4}
    assert report["settings"]["quant"]["layer_clusters"] == {"fc2": 8}
    fc2 = [t for t in weight_tensors((out / "model_int8.tflite").read_bytes()) if t.shape == (10, 500)][0]
    assert np.unique(fc2.values[fc2.values != 0]).size <= 8, "fc2 shares at most 8 values"
    assert cli.main(["evaluate", str(out / "model_int8.tflite"), "--dataset", "mnist"]) == 0
    evaluated = capsys.readouterr().out
    assert f"accuracy {report['accuracy']['int8']:.4f}" in evaluated
    assert cli.main(["info", str(out / "model_int8.tflite")]) == 0
    assert "entropy-coded" in capsys.readouterr().out
    assert cli.main(["info", str(out / "model_pruned.keras")]) == 0
    assert "fc1" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["compress", "--sparsity", "1.0"], "sparsity must be a fraction in [0, 1)"),
    (["compress", "--bits", "9"], "weight_bits must be from 2 to 8"),
    (["compress", "--clusters", "1"], "clusters must be 0 (off) or from 2 to 256"),
    (["evaluate", "/nonexistent.tflite"], "No such file"),
])
def test_cli_bad_input_is_a_clear_error(args, message, capsys):
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


def test_class_count_mismatches_are_refused_before_training(trained_lenet, small_mnist):
    import dataclasses

    from workbench.data import Dataset
    from workbench.errors import ConfigError

    eleven = dataclasses.replace(small_mnist, class_names=[str(i) for i in range(11)])
    with pytest.raises(ConfigError, match="10 outputs but dataset 'mnist' has 11 classes"):
        compress(trained_lenet, eleven)
    one = Dataset("one", "test", np.zeros((20, 28, 28, 1), np.float32), np.zeros(20, np.int64),
                  np.zeros((5, 28, 28, 1), np.float32), np.zeros(5, np.int64), ["only"], (28, 28, 1))
    with pytest.raises(ConfigError, match="at least 2"):
        compress("lenet5", one)


def test_a_test_split_missing_a_class_is_refused(small_mnist):
    import dataclasses

    from workbench.errors import ConfigError

    keep = small_mnist.y_test != 7
    data = dataclasses.replace(small_mnist, x_test=small_mnist.x_test[keep], y_test=small_mnist.y_test[keep])
    with pytest.raises(ConfigError, match="no test images of class 7"):
        compress("lenet5", data)


def test_the_prune_stage_removes_whole_neurons_first(small_mnist, trained_lenet):
    """prune.structured makes the artifact physically smaller; sizes still count from the full baseline."""
    from workbench import stages

    data = small_mnist.subset(train=500)
    none = {"finetune": TrainConfig(epochs=0), "qat": TrainConfig(epochs=0)}
    plain = stages.start_run(trained_lenet, data, PruneConfig(sparsity=0.5), training=none)
    cut = stages.start_run(trained_lenet, data, PruneConfig(sparsity=0.5, structured={"fc1": 0.6}), training=none)
    for run in (plain, cut):
        for step in (stages.train_baseline, stages.prune, stages.fine_tune, stages.quantize, stages.export):
            step(run)
    assert cut.pruned.get_layer("fc1").layer.units == 200 and cut.reports["structured"]["layers"][0]["name"] == "fc1"
    assert cut.sizes["fp32_bytes"] == plain.sizes["fp32_bytes"]
    assert cut.sizes["tflite_bytes"] < 0.6 * plain.sizes["tflite_bytes"]
    fewer = plain.reports["export"]["compute"]["macs"] - cut.reports["export"]["compute"]["macs"]
    assert fewer == 800 * 300 + 300 * 10  # 300 of fc1's 500 neurons and their fc2 rows, counted from the int8 graph
    assert cut.reports["export"]["compute"]["fp32_macs"] == plain.reports["export"]["compute"]["fp32_macs"]
    with pytest.raises(ConfigError, match="structured"):
        stages.start_run(trained_lenet, data, PruneConfig(structured={"pool1": 0.5}))


def test_min_epochs_keeps_early_stopping_from_ending_training_too_soon(small_mnist):
    """A noisy validation accuracy early on (MobileNet's BatchNorm) must not end a baseline after its first epochs."""
    from workbench.config import TrainConfig
    from workbench.models import lenet5
    from workbench.train import fit

    data = small_mnist.subset(train=600)
    config = TrainConfig(epochs=6, learning_rate=1e-3, patience=1, min_epochs=4)
    report = fit(lenet5(), (data.x_train, data.y_train), config, validation=(data.x_val, data.y_val))
    assert report.epochs_run >= 5 and report.best_epoch >= 5  # watched from epoch 5 on, best among those
    assert "at least 4, at most 6 epochs" in report.rule and "counted from epoch 5" in report.rule
    rates = report.history["learning_rate"]
    assert len(rates) == report.epochs_run and rates[:4] == pytest.approx([1e-3] * 4)  # the first 4 at full rate
    with pytest.raises(ConfigError, match="min_epochs cannot exceed epochs"):
        TrainConfig(epochs=3, patience=2, min_epochs=4)
    assert TrainConfig.from_config(config.get_config()) == config


def test_the_learning_rate_plateau_waits_for_min_epochs_like_early_stopping():
    """A flat validation accuracy (MobileNet at width 0.25 validates at 10% for its first epochs) cuts the rate only
    once the epochs from min_epochs on stop improving: before, a flat start cut it to its floor by epoch 5."""
    import keras

    from workbench.train import PlateauFrom

    def rates(start_from_epoch, accuracies):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        plateau = PlateauFrom(start_from_epoch=start_from_epoch, monitor="val_accuracy", mode="max", factor=0.3,
                              patience=1, min_lr=1e-5)
        plateau.set_model(model)
        plateau.on_train_begin()
        seen = []
        for epoch, value in enumerate(accuracies):
            logs = {"val_accuracy": value}
            plateau.on_epoch_end(epoch, logs)
            seen.append(logs["learning_rate"])  # recorded every epoch, watched or not
        return [float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))] + seen

    flat_start = [0.1, 0.1, 0.1, 0.1, 0.7, 0.75, 0.74]
    before = rates(0, flat_start)  # the old rule: each flat epoch cut (a record holds the rate it ran at), then the floor
    assert before[1:6] == pytest.approx([1e-3, 1e-3, 3e-4, 9e-5, 2.7e-5]) and before[0] == pytest.approx(1e-5)
    waited = rates(4, flat_start)
    assert waited[1:6] == pytest.approx([1e-3] * 5)  # epochs 1-5 at the configured rate (epoch 5 is the first best)
    assert waited[0] == pytest.approx(3e-4)  # epoch 7 did not improve on epoch 6: one cut
