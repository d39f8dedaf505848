"""compress(): baseline -> prune -> fine-tune -> QAT -> int8 export -> measured report."""

from __future__ import annotations

import contextlib
import pathlib
import threading
import time
from typing import Callable

import keras

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.data import Dataset, load_dataset
from workbench.errors import ConfigError
from workbench.export.tflite import export_tflite, evaluate_tflite
from workbench.io import atomic_path
from workbench.metrics.size import fp32_bytes, size_report
from workbench.models.loading import check_model
from workbench.models.zoo import build_model
from workbench.pruning.api import prune_model, pruning_report
from workbench.quantization.api import quantize_model
from workbench.report import CompressionReport
from workbench.train import accuracy, fit

STAGES = ("data", "baseline", "prune", "finetune", "qat", "export")


def compress(model="lenet5", dataset="mnist", prune: PruneConfig | None = None, quant: QuantConfig | None = None,
             baseline: TrainConfig | None = None, finetune: TrainConfig | None = None,
             qat: TrainConfig | None = None, out_dir=None, int8_io: bool = False,
             on_stage: Callable[[str, dict], None] | None = None, on_record: Callable[[dict], None] | None = None,
             stop: threading.Event | None = None) -> CompressionReport:
    """Compress a model and measure the int8 artifact.

    Args:
        model: a zoo name ("lenet5", ...), trained from scratch with ``baseline``; or a trained
            keras.Model, used as the baseline as it is.
        dataset: "mnist", "fashion_mnist" or a Dataset.
        prune, quant: pruning and quantization settings.
        baseline, finetune, qat: training settings of the three training stages.
        out_dir: when given, writes model_int8.tflite, model_pruned.keras and report.json there
            (each written to a temporary file first, then renamed).
        on_stage: called as on_stage(stage, info) when each stage starts ("done" at the end).
        on_record: receives training records (see workbench.train.RecordCallback).
        stop: when set, training stages end after the current batch.

    Returns:
        CompressionReport; accuracies are fractions, measured on the held-out split, the int8
        one on the .tflite artifact with LiteRT.
    """
    prune = prune or PruneConfig()
    quant = quant or QuantConfig()
    baseline = baseline or TrainConfig(epochs=8, learning_rate=1e-3)
    finetune = finetune or TrainConfig(epochs=6, learning_rate=5e-4)
    qat = qat or TrainConfig(epochs=3, learning_rate=1e-4)
    seconds: dict[str, float] = {}
    notify = on_stage or (lambda stage, info: None)

    def stage(name):
        notify(name, {})
        return time.perf_counter()

    t = stage("data")
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    train_xy, test_xy = (data.x_train, data.y_train), (data.x_test, data.y_test)
    seconds["data"] = time.perf_counter() - t

    t = stage("baseline")
    if isinstance(model, keras.Model):
        base = model
        check_model(base, base.name)
        if tuple(base.inputs[0].shape[1:]) != tuple(data.input_shape):
            raise ConfigError(f"Model {base.name!r} takes {tuple(base.inputs[0].shape[1:])} inputs but dataset "
                              f"{data.name!r} has {tuple(data.input_shape)} images.")
        name = base.name
    else:
        name = model
        base = build_model(model, input_shape=data.input_shape, classes=data.num_classes)
        fit(base, train_xy, baseline, on_record=on_record, stop=stop, phase="baseline")
    acc_base = accuracy(base, *test_xy)
    seconds["baseline"] = time.perf_counter() - t

    t = stage("prune")
    pruned, _ = prune_model(base, prune, data=train_xy, batch_size=finetune.batch_size)
    acc_oneshot = accuracy(pruned, *test_xy)
    seconds["prune"] = time.perf_counter() - t

    t = stage("finetune")
    ft = fit(pruned, train_xy, finetune, prune=prune, on_record=on_record, stop=stop, phase="finetune") \
        if finetune.epochs else None
    acc_pruned = accuracy(pruned, *test_xy)
    prune_report = pruning_report(pruned, prune)
    seconds["finetune"] = time.perf_counter() - t

    t = stage("qat")
    calib = data.x_train[:1024]
    qat_model, quant_report = quantize_model(pruned, quant, calibration_data=calib)
    qt = fit(qat_model, train_xy, qat, on_record=on_record, stop=stop, phase="qat") if qat.epochs else None
    acc_qat = accuracy(qat_model, *test_xy)
    seconds["qat"] = time.perf_counter() - t

    t = stage("export")
    tflite, _ = export_tflite(qat_model, data.x_train[:500], int8_io=int8_io)
    acc_int8 = evaluate_tflite(tflite, *test_xy)
    sizes = size_report(fp32_bytes(base), tflite)
    seconds["export"] = time.perf_counter() - t

    report = CompressionReport(
        model=name,
        dataset=data.summary(),
        settings={"prune": prune.get_config(), "quant": quant.get_config(), "baseline": baseline.get_config(),
                  "finetune": finetune.get_config(), "qat": qat.get_config(), "int8_io": int8_io,
                  "baseline_trained_here": not isinstance(model, keras.Model)},
        accuracy={"baseline": acc_base, "one_shot": acc_oneshot, "pruned": acc_pruned, "qat": acc_qat,
                  "int8": acc_int8},
        sparsity={"overall": prune_report.sparsity,
                  "layers": {layer.name: layer.sparsity for layer in prune_report.layers}},
        sizes={**sizes.to_dict()},
        seconds=seconds,
        prune=prune_report.to_dict(),
        quant=quant_report.to_dict(),
        stopped=bool((ft and ft.stopped) or (qt and qt.stopped) or (stop is not None and stop.is_set())),
    )
    if out_dir is not None:
        report.files = write_outputs(out_dir, tflite, pruned, report)
    notify("done", {"report": report})
    report.artifacts = {"tflite": tflite, "pruned": pruned, "qat": qat_model, "baseline": base}
    return report


def write_outputs(out_dir, tflite: bytes, pruned: keras.Model, report: CompressionReport) -> dict:
    """Write the three outputs all-or-nothing: each goes to a temporary file, renamed only when all are written."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"tflite": str(out / "model_int8.tflite"), "pruned": str(out / "model_pruned.keras"),
             "report": str(out / "report.json")}
    report.files = files
    with contextlib.ExitStack() as stack:
        tmp = {key: stack.enter_context(atomic_path(path, suffix=pathlib.Path(path).suffix))
               for key, path in files.items()}
        tmp["tflite"].write_bytes(tflite)
        pruned.save(tmp["pruned"])
        tmp["report"].write_text(report.to_json())
    return files
