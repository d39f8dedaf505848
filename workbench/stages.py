"""The stages of the one compression pipeline: data, baseline, prune, fine-tune, QAT, export, measure.

Each stage takes a :class:`Run`, does one step, records what it measured in the run, and
returns it. ``compress()``, the CLI, the Studio's buttons, the paper app, the bench and the
search all call these functions; none of them re-implements a step (the Optuna trial object
is the model: one object carries the settings and the results, and any caller can drive it).

Every accuracy a stage measures is on the **validation** split: it is what choices are made
on. Only :func:`measure` with ``split="test"`` touches the test split, once per final report.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
from typing import Callable

import keras
import numpy as np

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.data import Dataset, load_dataset
from workbench.errors import ConfigError, ModelError
from workbench.export.micro import micro_check
from workbench.export.tflite import check_target, convert_float, export_tflite, predict_tflite
from workbench.metrics.flops import graph_macs
from workbench.metrics.latency import DEFAULT_RUNS, DEFAULT_THREADS, speed_report
from workbench.metrics.size import fp32_bytes, size_report
from workbench.loading import check_model
from workbench.models.zoo import ZOO, build_model
from workbench.nn.evaluate import accuracy, correct_predictions
from workbench.nn.forward import layer_kind
from workbench.nn.separable import expand_config, split_separable
from workbench.pruning.api import prune_model, pruning_report
from workbench.pruning.callbacks import prune_to_fraction
from workbench.pruning.structured import count_macs, prune_filters
from workbench.quantization.api import quantize_model
from workbench.stats import accuracy_with_interval, paired_delta
from workbench.train import fit

CALIBRATION_IMAGES = 1024  # initialise QAT activation ranges
REPRESENTATIVE_IMAGES = 500  # calibrate the converter for tensors QAT does not cover

DEFAULT_TRAINING = {
    # The baseline trains to convergence: early stopping on validation accuracy.
    "baseline": TrainConfig(epochs=40, learning_rate=1e-3, patience=4),
    "finetune": TrainConfig(epochs=6, learning_rate=5e-4),
    "qat": TrainConfig(epochs=3, learning_rate=1e-4),
}


@dataclasses.dataclass
class Run:
    """One compression run: its settings, its models and everything the stages measured.

    Attributes:
        data: the Dataset (train / validation / test).
        model_name: a zoo name, or the name of the user's model.
        prune, quant: pruning and quantization settings.
        training: TrainConfig per training stage ("baseline", "finetune", "qat").
        baseline: the trained float model.
        pruned: the PruneWrapper model (masks are model variables).
        qat: the quantization-aware model.
        tflite: the int8 artifact's bytes.
        validation: accuracy on the validation split after each stage.
        int8_correct: which validation images the int8 artifact gets right (for paired comparisons).
        test: the final report's figures on the test split (filled by ``measure(run, "test")``).
        sizes: the four sizes of the artifact and its ratio.
        seconds: wall time per stage.
        reports: each stage's own report (baseline training, prune, quant, ...), JSON-ready.
        records: training records (phase, epoch, step, loss, accuracy, val_accuracy).
    """

    data: Dataset
    model_name: str = ""
    model_kwargs: dict = dataclasses.field(default_factory=dict)  # zoo builder options (alpha, image_size)
    prune: PruneConfig = dataclasses.field(default_factory=PruneConfig)
    quant: QuantConfig = dataclasses.field(default_factory=QuantConfig)
    training: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_TRAINING))
    int8_io: bool = False
    export_target: str = "size"  # "size": <= 4-bit layers packed as INT4; "speed": every weight int8 (export/tflite.py)
    micro: bool = True  # the export stage also runs the artifact on TensorFlow Lite Micro (export/micro.py)
    baseline: keras.Model | None = None
    pruned: keras.Model | None = None
    qat: keras.Model | None = None
    tflite: bytes | None = None
    fp32_tflite: bytes | None = None  # the baseline as a float .tflite, made once (the speed reference)
    validation: dict = dataclasses.field(default_factory=dict)
    int8_correct: np.ndarray | None = None  # per validation image: did the int8 artifact get it right (export)
    test: dict = dataclasses.field(default_factory=dict)
    sizes: dict = dataclasses.field(default_factory=dict)
    seconds: dict = dataclasses.field(default_factory=dict)
    reports: dict = dataclasses.field(default_factory=dict)
    records: list = dataclasses.field(default_factory=list)
    stopped: bool = False

    def settings(self) -> dict:
        """The settings that reproduce this run (JSON-ready)."""
        return {"prune": self.prune.get_config(), "quant": self.quant.get_config(),
                **{name: config.get_config() for name, config in self.training.items()}, "int8_io": self.int8_io,
                "export_target": self.export_target}

    @property
    def validation_xy(self):
        return self.data.x_val, self.data.y_val


def _timed(run: Run, name: str):
    class _Timer:
        def __enter__(self):
            self.start = time.perf_counter()

        def __exit__(self, *exc):
            run.seconds[name] = run.seconds.get(name, 0.0) + time.perf_counter() - self.start
    return _Timer()


def start_run(model="lenet5", dataset="mnist", prune: PruneConfig | None = None, quant: QuantConfig | None = None,
              training: dict | None = None, int8_io: bool = False, model_kwargs: dict | None = None,
              export_target: str = "size") -> Run:
    """Stage "data": load the dataset (offline first) and open a Run.

    Args:
        model: a zoo name (trained by :func:`train_baseline`) or a trained keras.Model (used as is).
        dataset: a dataset name or a Dataset.
        training: TrainConfigs by stage name; missing stages get ``DEFAULT_TRAINING``.
        model_kwargs: options of the zoo builder (e.g. ``alpha``, ``image_size`` for mobilenet_v1).
        export_target: "size" or "speed" (see ``workbench.export.tflite.TARGETS``).
    """
    unknown = set(training or {}) - set(DEFAULT_TRAINING)
    if unknown:
        raise ConfigError(f"training names unknown stages {sorted(unknown)}; use {list(DEFAULT_TRAINING)}.")
    start = time.perf_counter()
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    run = Run(data=data, prune=prune or PruneConfig(), quant=quant or QuantConfig(),
              training={**DEFAULT_TRAINING, **(training or {})}, int8_io=int8_io,
              model_kwargs=dict(model_kwargs or {}), export_target=check_target(export_target))
    if isinstance(model, keras.Model):
        check_model(model, model.name)
        model, split = split_separable(model)  # SeparableConv2D as its depthwise and pointwise halves
        run.prune, run.quant = expand_config(run.prune, split), expand_config(run.quant, split)
        shape = tuple(model.inputs[0].shape[1:])
        if shape != tuple(data.input_shape):
            raise ConfigError(f"Model {model.name!r} takes {shape} inputs but dataset {data.name!r} has "
                              f"{tuple(data.input_shape)} images.")
        run.baseline, run.model_name = model, model.name
    elif isinstance(model, str):
        run.model_name = model
    else:
        raise ConfigError(f"model must be a zoo name or a keras.Model. Received: {type(model).__name__}")
    check_settings(run, model if isinstance(model, keras.Model) else None)
    run.seconds["data"] = time.perf_counter() - start
    return run


def check_settings(run: Run, model: keras.Model | None = None) -> None:
    """Refuse, before any training, settings that name layers the model lacks or data it cannot take."""
    if model is None:  # a zoo model: build it untrained (cheap) to know its layers and outputs
        if run.model_name not in ZOO:
            raise ConfigError(f"Unknown model. Received: model={run.model_name!r}; use one of {list(ZOO)} or a "
                              "trained keras.Model.")
        model = build_model(run.model_name, input_shape=run.data.input_shape, classes=run.data.num_classes,
                            **run.model_kwargs)
    if run.data.num_classes < 2:
        raise ConfigError(f"Dataset {run.data.name!r} has {run.data.num_classes} class; classifying needs at least 2.")
    outputs = int(model.outputs[0].shape[-1])
    if outputs != run.data.num_classes:
        raise ConfigError(f"Model {model.name!r} has {outputs} outputs but dataset {run.data.name!r} has "
                          f"{run.data.num_classes} classes; give data with {outputs} classes or another model.")
    missing = np.flatnonzero(np.bincount(run.data.y_test, minlength=run.data.num_classes) == 0)
    if missing.size:
        shown = ", ".join(str(c) for c in missing[:5]) + (" …" if missing.size > 5 else "")
        raise ConfigError(f"Dataset {run.data.name!r} has no test images of class {shown}: its accuracy could not "
                          "be measured. Give a test split with every class, or more data to split.")
    weight_layers = {layer.name for layer in model.layers if layer_kind(layer)}
    every_layer = {layer.name for layer in model.layers}
    checks = (("prune.layer_sparsity", run.prune.layer_sparsity, weight_layers),
              ("prune.structured", run.prune.structured,
               {layer.name for layer in model.layers if type(layer).__name__ in ("Conv2D", "Dense")}),
              ("prune.layer_threshold", run.prune.layer_threshold, weight_layers),
              ("prune.exclude", run.prune.exclude, every_layer),
              ("quant.layer_weight_bits", run.quant.layer_weight_bits, weight_layers),
              ("quant.layer_clusters", run.quant.layer_clusters, weight_layers))
    for what, names, known in checks:
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigError(f"{what} names {unknown}, which model {model.name!r} has no weight layer for. "
                              f"Its weight layers: {sorted(weight_layers)}.")


def train_baseline(run: Run, on_record: Callable | None = None, stop: threading.Event | None = None,
                   record_every: int = 10) -> Run:
    """Stage "baseline": train the zoo model (early stopping on validation), or take the given one."""
    with _timed(run, "baseline"):
        if run.baseline is None:
            config = run.training["baseline"]
            keras.utils.set_random_seed(config.seed)
            kwargs = dict(run.model_kwargs)
            builder = ZOO.get(run.model_name)
            if builder is not None and "seed" in inspect.signature(builder).parameters:
                kwargs.setdefault("seed", config.seed)  # the initial weights follow the training seed
            run.baseline = build_model(run.model_name, input_shape=run.data.input_shape,
                                       classes=run.data.num_classes, **kwargs)
            report = fit(run.baseline, (run.data.x_train, run.data.y_train), config, on_record=on_record,
                         stop=stop, phase="baseline", validation=run.validation_xy if config.patience else None,
                         record_every=record_every)
            run.stopped |= report.stopped
            run.reports["baseline"] = {"trained_here": True, "epochs": report.epochs_run,
                                       "best_epoch": report.best_epoch, "rule": report.rule,
                                       "history": report.history}
        else:
            run.reports.setdefault("baseline", {"trained_here": False, "epochs": None, "best_epoch": None,
                                                "rule": "given: a trained model was passed in"})
        run.validation["baseline"] = accuracy(run.baseline, *run.validation_xy)
    return run


def given_baseline(run: Run, model: keras.Model, rule: str, validation: float | None = None) -> Run:
    """Take ``model`` as the run's trained baseline (not trained here); ``validation`` is its known validation
    accuracy (measured when not given)."""
    run.baseline = model
    run.reports["baseline"] = {"trained_here": False, "epochs": None, "best_epoch": None, "rule": rule}
    run.validation["baseline"] = (float(validation) if validation is not None
                                  else accuracy(model, *run.validation_xy))
    return run


def prune(run: Run) -> Run:
    """Stage "prune": remove whole filters / neurons (``prune.structured``), then wrap the weight layers with
    masks and, for a one-shot schedule, prune now. ``run.baseline`` stays the full model (sizes count from it)."""
    _need(run, "baseline", "prune")
    with _timed(run, "prune"):
        source = run.baseline
        if run.prune.structured:
            source, structured = prune_filters(run.baseline, 0.0, layer_sparsity=run.prune.structured)
            if len(structured.layers) < sum(1 for v in run.prune.structured.values() if v > 0):
                reasons = "; ".join(f"{name}: {why}" for name, why in structured.skipped)
                raise ConfigError(f"prune.structured names layers whose channels cannot be removed ({reasons}). "
                                  f"Received: structured={run.prune.structured!r}")
            run.reports["structured"] = structured.to_dict()
        run.pruned, report = prune_model(source, run.prune, data=(run.data.x_train, run.data.y_train),
                                         batch_size=run.training["finetune"].batch_size)
        run.reports["prune"] = report.to_dict()
        run.validation["one_shot"] = accuracy(run.pruned, *run.validation_xy)
    return run


def fine_tune(run: Run, on_record: Callable | None = None, stop: threading.Event | None = None,
              record_every: int = 10) -> Run:
    """Stage "fine-tune": train the pruned model; a polynomial schedule raises sparsity to its targets."""
    _need(run, "pruned", "fine-tune")
    config = run.training["finetune"]
    with _timed(run, "finetune"):
        if config.epochs:
            report = fit(run.pruned, (run.data.x_train, run.data.y_train), config, prune=run.prune,
                         on_record=on_record, stop=stop, phase="finetune", validation=run.validation_xy,
                         record_every=record_every)
            run.stopped |= report.stopped
        elif run.prune.schedule == "polynomial":  # no steps to spread the schedule over: reach the targets now
            prune_to_fraction(run.pruned, run.prune, 1.0, (run.data.x_train, run.data.y_train), config.batch_size)
        run.reports["prune"] = pruning_report(run.pruned, run.prune).to_dict()
        run.validation["pruned"] = accuracy(run.pruned, *run.validation_xy)
    return run


def quantize(run: Run, on_record: Callable | None = None, stop: threading.Event | None = None,
             record_every: int = 10) -> Run:
    """Stage "QAT": fold BatchNorm, insert fake quantization (masks kept) and train."""
    _need(run, "pruned", "QAT")
    config = run.training["qat"]
    with _timed(run, "qat"):
        qat, report = quantize_model(run.pruned, run.quant, calibration_data=run.data.x_train[:CALIBRATION_IMAGES])
        if config.epochs:
            trained = fit(qat, (run.data.x_train, run.data.y_train), config, on_record=on_record, stop=stop,
                          phase="qat", validation=run.validation_xy, record_every=record_every)
            run.stopped |= trained.stopped
        run.qat = qat
        run.reports["quant"] = report.to_dict()
        run.validation["qat"] = accuracy(qat, *run.validation_xy)
    return run


def export(run: Run) -> Run:
    """Stage "export": the full-integer int8 .tflite of the QAT model (or post-training quantization of the pruned one)."""
    _need(run, "pruned", "export")
    with _timed(run, "export"):
        source = run.qat
        if source is None:  # post-training quantization: QAT layers calibrated, not trained
            source, report = quantize_model(run.pruned, run.quant,
                                            calibration_data=run.data.x_train[:CALIBRATION_IMAGES])
            run.reports["quant"] = report.to_dict()
        run.tflite, report = export_tflite(source, run.data.x_train[:REPRESENTATIVE_IMAGES], int8_io=run.int8_io,
                                           target=check_target(run.export_target))
        run.reports["export"] = {**report.to_dict(), "qat": run.qat is not None,
                                 "compute": {**graph_macs(run.tflite), "fp32_macs": count_macs(run.baseline)}}
        predicted = predict_tflite(run.tflite, run.data.x_val).argmax(axis=-1)
        if run.micro:
            run.reports["export"]["micro"] = micro_check(run.tflite, run.data.x_val, run.data.y_val, litert=predicted)
        run.int8_correct = predicted == np.asarray(run.data.y_val)
        run.validation["int8"] = float(run.int8_correct.mean())
        run.sizes = {k: v for k, v in size_report(fp32_bytes(run.baseline), run.tflite).to_dict().items()}
    return run


def measure_speed(run: Run, threads: int = DEFAULT_THREADS, runs: int = DEFAULT_RUNS, seconds: float = 2.0) -> dict:
    """How fast the artifact runs here, beside the float .tflite of the baseline, in the same interpreter with
    the same ``threads``: batch-1 latency (p50, p95 over ``runs``) and batch-64 throughput (metrics/latency.py).

    Stored in ``run.reports["speed"]``: {'threads', 'target', 'int8', 'fp32', 'int8_over_fp32': {'batch1_p50',
    'batch64'}} (above 1: int8 is faster).
    """
    _need(run, "tflite", "measure_speed")
    with _timed(run, "speed"):
        images = run.data.x_val[:64]
        int8 = speed_report(run.tflite, images, threads, runs, seconds)
        if run.fp32_tflite is None:
            run.fp32_tflite = convert_float(run.baseline)
        fp32 = speed_report(run.fp32_tflite, images, threads, runs, seconds)
        run.reports["speed"] = {
            "threads": threads, "target": run.export_target, "int8": int8, "fp32": fp32,
            "int8_over_fp32": {"batch1_p50": fp32["batch1"]["p50_ms"] / int8["batch1"]["p50_ms"],
                               "batch64": int8["batch64"]["images_per_s"] / fp32["batch64"]["images_per_s"]}}
    return run.reports["speed"]


def measure(run: Run, split: str = "test") -> dict:
    """Stage "measure": the int8 artifact against the fp32 baseline on one split, with 95% intervals.

    Returns (and stores in ``run.test`` for the test split) {'split', 'baseline', 'int8', 'delta'}:
    Wilson intervals for both accuracies, and the paired delta on the same images with McNemar's
    exact p-value.
    """
    _need(run, "tflite", "measure")
    x, y = run.data.split(split)
    with _timed(run, f"measure_{split}"):
        figures = measure_artifact(run.tflite, correct_predictions(run.baseline, x, y), x, y, split)
    if split == "test":
        run.test = figures
    return figures


def measure_artifact(tflite: bytes, baseline_correct: np.ndarray, x, y, split: str = "test") -> dict:
    """The figures of ``measure`` for an int8 artifact on images ``x``, labels ``y``, given which of them the fp32
    baseline gets right (``baseline_correct``; the search measures a kept artifact this way)."""
    int8 = predict_tflite(tflite, x).argmax(axis=-1) == np.asarray(y)
    return {"split": split, "baseline": accuracy_with_interval(baseline_correct), "int8": accuracy_with_interval(int8),
            "delta": paired_delta(baseline_correct, int8)}


def _need(run: Run, attribute: str, stage: str) -> None:
    if getattr(run, attribute) is None:
        before = {"baseline": "train_baseline", "pruned": "prune", "tflite": "export"}[attribute]
        raise ModelError(f"The {stage} stage needs run.{attribute}; run the {before} stage first. Received: "
                         f"run.{attribute}=None")


def run_all(run: Run, on_stage: Callable[[str, dict], None] | None = None, on_record: Callable | None = None,
            stop: threading.Event | None = None) -> Run:
    """Every stage in order, ending with the test-split measurement; ``on_stage(name, {})`` before each."""
    notify = on_stage or (lambda name, info: None)
    for name, step in (("baseline", lambda: train_baseline(run, on_record, stop)), ("prune", lambda: prune(run)),
                       ("finetune", lambda: fine_tune(run, on_record, stop)),
                       ("qat", lambda: quantize(run, on_record, stop)), ("export", lambda: export(run)),
                       ("measure", lambda: measure(run, "test"))):
        notify(name, {})
        step()
    return run


STAGES = ("data", "baseline", "prune", "finetune", "qat", "export", "measure")
