"""compress(): the stages of workbench.stages in order, then an all-or-nothing write of the outputs."""

from __future__ import annotations

import hashlib
import pathlib
import threading
from typing import Callable

import keras

from workbench import stages
from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.io import check_output_dir, publish_folder
from workbench.report import CompressionReport

STAGES = stages.STAGES


def compress(model="lenet5", dataset="mnist", prune: PruneConfig | None = None, quant: QuantConfig | None = None,
             baseline: TrainConfig | None = None, finetune: TrainConfig | None = None,
             qat: TrainConfig | None = None, out_dir=None, int8_io: bool = False, export_target: str = "size",
             speed: bool = False, on_stage: Callable[[str, dict], None] | None = None, on_record: Callable[[dict], None] | None = None,
             stop: threading.Event | None = None) -> CompressionReport:
    """Compress a model and measure the int8 artifact.

    Args:
        model: a zoo name ("lenet5", ...), trained from scratch with ``baseline`` (default: early
            stopping on the validation split); or a trained keras.Model, used as the baseline as it is.
        dataset: "mnist", "fashion_mnist" or a Dataset (train / validation / test).
        prune, quant: pruning and quantization settings.
        baseline, finetune, qat: training settings of the three training stages.
        out_dir: when given, writes model_int8.tflite, model_pruned.keras and report.json there.
        int8_io: int8 model input and output instead of float.
        export_target: "size" (layers of <= 4 weight bits packed as INT4) or "speed" (every weight int8, for
            LiteRT's fast int8 kernels); see ``workbench.export.tflite.TARGETS``.
        speed: also measure the artifact's latency and throughput beside the fp32 model's (``report.speed``).
        on_stage: called as on_stage(stage, info) when each stage starts ("done" at the end).
        on_record: receives training records (see workbench.train.RecordCallback).
        stop: when set, training stages end after the current batch.

    Returns:
        CompressionReport: per-stage accuracies on the validation split; the final baseline and
        int8 accuracies on the test split (measured once, the int8 one on the .tflite with
        LiteRT) with 95% Wilson intervals and McNemar's paired test.
    """
    if out_dir is not None:
        check_output_dir(out_dir)  # before any training: a bad folder fails now, not after the whole run
    notify = on_stage or (lambda stage, info: None)
    notify("data", {})
    training = {name: config for name, config in (("baseline", baseline), ("finetune", finetune), ("qat", qat))
                if config is not None}
    run = stages.start_run(model, dataset, prune, quant, training, int8_io=int8_io, export_target=export_target)
    stages.run_all(run, on_stage=notify, on_record=on_record, stop=stop)
    if speed:
        notify("speed", {})
        stages.measure_speed(run)
    report = report_from_run(run)
    report.stopped = bool(run.stopped or (stop is not None and stop.is_set()))
    if out_dir is not None:
        report.files = write_outputs(out_dir, run.tflite, run.pruned, report)
    notify("done", {"report": report})
    report.artifacts = {"tflite": run.tflite, "pruned": run.pruned, "qat": run.qat, "baseline": run.baseline}
    return report


def report_from_run(run: stages.Run) -> CompressionReport:
    """The CompressionReport of a measured Run."""
    if not run.test:
        stages.measure(run, "test")
    prune_report = run.reports["prune"]
    return CompressionReport(
        model=run.model_name,
        dataset=run.data.summary(),
        settings={**run.settings(), "baseline_trained_here": run.reports["baseline"]["trained_here"]},
        accuracy={"baseline": run.test["baseline"]["accuracy"], "int8": run.test["int8"]["accuracy"]},
        validation=dict(run.validation),
        test=dict(run.test),
        baseline_training={k: v for k, v in run.reports["baseline"].items() if k != "history"},
        sparsity={"overall": prune_report["sparsity"],
                  "layers": {layer["name"]: layer["sparsity"] for layer in prune_report["layers"]}},
        sizes=dict(run.sizes),
        seconds=dict(run.seconds),
        prune=prune_report,
        quant=run.reports.get("quant", {}),
        compute={k: v for k, v in run.reports["export"].get("compute", {}).items() if k != "ops"},
        micro=run.reports["export"].get("micro", {}),
        speed=run.reports.get("speed", {}),
    )


def write_outputs(out_dir, tflite: bytes, pruned: keras.Model, report: CompressionReport) -> dict:
    """Write model_int8.tflite, model_pruned.keras and report.json all-or-nothing (``workbench.io.publish_folder``):
    ``out_dir`` always holds one complete, self-consistent set; the report names the .tflite's sha256."""
    out = pathlib.Path(out_dir)
    files = {"tflite": str(out / "model_int8.tflite"), "pruned": str(out / "model_pruned.keras"),
             "report": str(out / "report.json"), "tflite_sha256": hashlib.sha256(tflite).hexdigest()}
    report.files = files

    def write(folder: pathlib.Path) -> None:
        (folder / "model_int8.tflite").write_bytes(tflite)
        pruned.save(folder / "model_pruned.keras")
        (folder / "report.json").write_text(report.to_json())

    publish_folder(out, write)  # ConfigError when out is something else than a workbench output folder
    return files
