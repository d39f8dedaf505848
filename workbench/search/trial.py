"""What a Dask worker runs: one trial (or one final seed) of the pipeline's stages, from the shared baseline.

A job is a plain dict (settings as configs' dicts), so it pickles small; the baseline reaches the
worker once as ``.keras`` bytes (scattered) and the data by name (the offline chain, on the worker)
or scattered once. Both are cached per worker process, keyed by their content.

The early-stopping rule (``should_stop``) is the search's pruner: after each fine-tune epoch it asks
whether the trial can still end within the accuracy budget, given how much the finished trials
recovered from the same point to their int8 result. See ``workbench.search.engine`` for why this
is not one of Optuna's pruners.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import traceback

import numpy as np

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.stats import paired_delta

_CACHE: dict = {}  # per worker process: {"model:<sha>": keras.Model, "data:<key>": Dataset}
SAFETY_POINTS = 0.2  # stop a trial only when it misses the budget by this much even after the best recovery seen
MIN_FINISHED = 3  # finished trials needed before the rule stops anything
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_MALLOC_RESTORED = False


def restore_malloc() -> bool:
    """Undo, in this process, what Dask's default ``MALLOC_TRIM_THRESHOLD_`` does to TensorFlow (cluster.py's
    ``worker_environ``): glibc's mmap threshold back to its 32 MiB ceiling and trimming above 64 MiB. Done once,
    and only where the variable is set and glibc is there; True when it was applied now."""
    global _MALLOC_RESTORED
    if _MALLOC_RESTORED or not os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    _MALLOC_RESTORED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 64 << 20))
    except (OSError, AttributeError):  # not glibc: nothing to undo
        return False


def set_threads() -> int:
    """TensorFlow's op threads follow the worker's share of the machine (``WORKBENCH_TF_THREADS``)."""
    import tensorflow as tf

    restore_malloc()

    threads = int(os.environ.get("WORKBENCH_TF_THREADS", "0") or 0)
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:  # TensorFlow already started in this process: its threads are set
            pass
    return threads


def model_from_bytes(data: bytes):
    key = "model:" + hashlib.sha256(data).hexdigest()
    if key not in _CACHE:
        from workbench.loading import load_user_model

        _CACHE[key] = load_user_model(data, name="baseline.keras", max_bytes=max(len(data), 1))
    return _CACHE[key]


def baseline_correct(baseline: bytes, data, split: str = "validation") -> np.ndarray:
    """Which images of ``split`` the shared baseline gets right (once per worker, baseline, data and split)."""
    x, y = data.split(split)
    key = f"correct:{hashlib.sha256(baseline).hexdigest()}:{data.name}:{split}:{len(y)}"
    if key not in _CACHE:
        from workbench.nn.evaluate import correct_predictions

        _CACHE[key] = correct_predictions(model_from_bytes(baseline), x, y)
    return _CACHE[key]


def dataset_for(spec):
    """A Dataset: given (scattered), or loaded here by name, offline first ({'name', 'limit', 'seed'})."""
    if not isinstance(spec, dict):
        return spec
    key = f"data:{spec['name']}:{spec.get('limit', 0)}"
    if key not in _CACHE:
        from workbench.data import load_dataset

        data = load_dataset(spec["name"])
        _CACHE[key] = data.subset(train=spec["limit"]) if spec.get("limit") else data
    return _CACHE[key]


def with_fidelity(data, fidelity: float):
    """``data`` with ``fidelity`` of its training images (stratified, seed 0: the same images in every trial of a
    search), at least one per class; its validation and test splits whole."""
    if not 0.0 < fidelity <= 1.0:
        raise ValueError(f"fidelity must be a fraction in (0, 1]. Received: fidelity={fidelity!r}")
    if fidelity == 1.0:
        return data
    return data.subset(train=max(int(data.num_classes), round(len(data.y_train) * fidelity)))


def should_stop(epoch: int, epochs: int, accuracy: float, target: float, recovery: dict) -> bool:
    """True when a trial, at ``accuracy`` after fine-tune epoch ``epoch`` of ``epochs``, cannot reach ``target``.

    ``recovery[r]`` is the most a finished trial gained from r epochs before the end of its fine-tune to
    its int8 validation accuracy (it may be negative: QAT and the pruning ramp usually cost accuracy; a negative
    one is taken as 0).
    """
    remaining = epochs - epoch
    gain = recovery.get(remaining, recovery.get(str(remaining)))
    if gain is None or recovery.get("finished", 0) < MIN_FINISHED:
        return False
    # A further loss is never predicted (a few finished trials do not say that much): a trial stops only when it
    # is below the budget by more than the largest gain seen, plus the safety margin.
    return accuracy + max(gain, 0.0) + SAFETY_POINTS / 100.0 < target


def run_job(job: dict, baseline: bytes, data_spec) -> dict:
    """One trial: prune, fine-tune, QAT and export from the shared baseline, measured on validation
    (and, for a final seed, on the test split). Never raises: a failure comes back as a record."""
    started = time.perf_counter()
    record = {"number": job.get("number"), "seed": job.get("seed", 0), "state": "fail", "intermediate": {},
              "worker": f"{os.uname().nodename}:{os.getpid()}", "error": None}
    try:
        set_threads()
        _run(job, baseline, data_spec, record)
    except Exception as exc:  # the search goes on; the message is kept with the trial
        record["state"] = "fail"
        record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        record["traceback"] = traceback.format_exc(limit=8)[-4000:]
    record["seconds"] = {**record.get("seconds", {}), "total": time.perf_counter() - started}
    return record


def measure_job(job: dict, tflite: bytes, baseline: bytes, data_spec) -> dict:
    """A kept artifact (a confirmation run's, which the pick reuses as that seed's final run) measured on the
    test split, as a final run measures its own. Never raises: {'state': 'complete', 'test': figures, 'seconds'}
    or {'state': 'fail', 'error'}."""
    started = time.perf_counter()
    try:
        from workbench.stages import measure_artifact

        set_threads()
        data = _checked_data(job, data_spec)
        x, y = data.split("test")
        figures = measure_artifact(tflite, baseline_correct(baseline, data, "test"), x, y, "test")
        record = {"state": "complete", "test": figures}
    except Exception as exc:  # the search goes on; the message is kept with the seed
        record = {"state": "fail", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    record["seconds"] = {"measure_test": time.perf_counter() - started}
    return record


def _checked_data(job: dict, data_spec):
    data = dataset_for(data_spec)
    expected = job.get("data")
    summary = data.summary()
    found = {k: summary[k] for k in expected} if expected else None
    if found != expected:
        raise RuntimeError(f"This worker loaded other data under the name {data.name!r}: "
                           f"{found}, not the client's {expected}. Give every "
                           "worker the same dataset files (Keras cache or Debian package), or pass a Dataset.")
    return data


def _run(job: dict, baseline: bytes, data_spec, record: dict) -> None:
    from workbench import stages

    data = _checked_data(job, data_spec)
    data = with_fidelity(data, float(job.get("fidelity", 1.0)))
    record["train_images"] = int(len(data.y_train))
    model = model_from_bytes(baseline)
    training = {"finetune": TrainConfig.from_config(job["finetune"]), "qat": TrainConfig.from_config(job["qat"])}
    run = stages.Run(data=data, model_name=job.get("model_name", model.name), micro=job.get("split") == "test",
                     prune=PruneConfig.from_config(job["prune"]),
                     quant=QuantConfig.from_config(job["quant"]), training={**stages.DEFAULT_TRAINING, **training})
    stages.given_baseline(run, model, "the search's shared baseline", validation=job["baseline_validation"])
    stages.check_settings(run, model)
    stop = threading.Event()
    epochs = training["finetune"].epochs
    recovery = job.get("recovery") or {}

    def on_record(rec: dict) -> None:
        if rec.get("kind") == "epoch":
            value = rec.get("val_accuracy")
            if value is None or value != value:
                return
            epoch = int(rec["epoch"])  # 1-based
            record["intermediate"][str(epoch)] = float(value)
            if job.get("early_stop", True) and should_stop(epoch, epochs, float(value), job["target"], recovery):
                record["stopped_at"] = epoch
                stop.set()

    stages.prune(run)
    stages.fine_tune(run, on_record=on_record, stop=stop)
    record["validation"] = dict(run.validation)
    if stop.is_set():
        record["state"] = "pruned"
        record["seconds"] = dict(run.seconds)
        return
    stages.quantize(run)
    stages.export(run)
    record.update(state="complete", validation=dict(run.validation), seconds=dict(run.seconds),
                  sizes={k: v for k, v in run.sizes.items() if k != "tensors"},
                  sparsity=run.reports["prune"]["sparsity"], tflite=run.tflite,
                  compute={k: v for k, v in run.reports["export"]["compute"].items() if k != "ops"},
                  values=[int(run.sizes["gzip_bytes"]), float(run.validation["int8"])],
                  paired=paired_delta(baseline_correct(baseline, data), run.int8_correct))
    if job.get("keep_weights"):  # the fine-tuned float model, masks included, by layer (the Studio loads it)
        record["weights"] = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in run.pruned.layers
                             if layer.weights}
    if job.get("split") == "test":
        record["test"] = stages.measure(run, "test")


def recovery_table(records: list[dict]) -> dict:
    """``recovery[r]``: the most any finished trial gained from r fine-tune epochs before its end to its int8
    validation accuracy; 'finished' counts the trials it was learned from."""
    table: dict = {}
    finished = 0
    for rec in records:
        if rec.get("state") != "complete" or not rec.get("intermediate"):
            continue
        finished += 1
        final = rec["values"][1]
        epochs = max(int(e) for e in rec["intermediate"])
        for epoch, value in rec["intermediate"].items():
            remaining = epochs - int(epoch)
            table[remaining] = max(table.get(remaining, -np.inf), final - value)
    return {**{r: float(v) for r, v in table.items()}, "finished": finished}


def scan_layer(baseline: bytes, data_spec, layer: str, sparsities, images: int = 0) -> list[dict]:
    """The sensitivity of one layer (pruned alone, measured on validation, or on ``images`` of it, stratified),
    for the search's warm start."""
    from workbench.pruning.sensitivity import sensitivity_scan

    set_threads()
    data = dataset_for(data_spec)
    if images:
        data = data.subset(validation=images)
    frame = sensitivity_scan(model_from_bytes(baseline), (data.x_val, data.y_val), sparsities=sparsities,
                             layers=[layer])
    return frame.to_dict(orient="records")


def scan_model_layer(model_bytes: bytes, arrays: dict, layer: str, sparsities, criterion: str) -> list[dict]:
    """One layer of a sensitivity scan of a given (possibly pruned) model, on a worker (search/scan.py)."""
    from workbench.pruning.sensitivity import sensitivity_scan

    set_threads()
    train = (arrays["x_train"], arrays["y_train"]) if arrays.get("x_train") is not None else None
    frame = sensitivity_scan(model_from_bytes(model_bytes), (arrays["x"], arrays["y"]), sparsities=sparsities,
                             criterion=criterion, train_data=train, layers=[layer])
    return frame.to_dict(orient="records")
