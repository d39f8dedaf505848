"""Long runs of a SessionState (fine-tune, QAT, export, sensitivity scan) in a background thread.

Each run calls a stage of ``workbench.stages`` on the session's Run; nothing here re-implements a
step of the pipeline. Accuracies are measured on the validation split.

Each run snapshots what it may change; Stop (or a failure) puts the snapshot back, so the model
is as it was before that step.
"""

from __future__ import annotations

import os
import time

import numpy as np

from workbench import stages
from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError, WorkbenchError
from workbench.metrics.estimate import estimate_sizes
from workbench.pruning.masks import sparsity_of
from workbench.pruning.sensitivity import sensitivity_scan
from workbench.widgets.dispatch import post
from workbench.widgets.jobs import Job


SPEED_SECONDS = 1.0  # batch-64 throughput per model at export (batch-1 latency: 200 runs; stages.measure_speed)
ETA_AFTER = (0.02, 1.0)  # an estimate of the time left shows once 2% and 1 s of a run have gone


def time_left(fraction_done: float, elapsed: float) -> float | None:
    """Seconds left at the pace so far, or None while too little has run to tell."""
    if not ETA_AFTER[0] <= fraction_done < 1.0 or elapsed < ETA_AFTER[1]:
        return None
    return elapsed * (1.0 - fraction_done) / fraction_done


class RunsMixin:
    """Background runs for SessionState; at most one runs at a time."""

    record_every = 5
    _job_started = 0.0

    def _eta(self) -> float | None:
        return time_left(self.progress, time.monotonic() - self._job_started) if self.busy else None

    def start_job(self, name: str, work, restore) -> bool:
        """Run ``work(stop_event)`` in the background; ``restore()`` undoes it if stopped or failed."""
        return self._start(name, work, restore, needs_model=False)

    def _on_record_steps(self, total_steps: int):
        """Records of a training run whose bar counts ``total_steps`` batches."""
        def on_record(record):
            post(self._append_record, dict(record), min(1.0, record.get("step", 0) / max(1, total_steps)))
        return on_record

    def _append_record(self, record: dict, progress: float | None) -> None:
        self.records = self.records + [record]
        if progress is not None:
            self.progress = progress

    def _set(self, **values) -> None:
        """Set traits from a worker thread (on the kernel's main thread)."""
        def apply():
            for key, value in values.items():
                setattr(self, key, value)
        post(apply)

    def _start(self, name: str, work, restore, needs_model: bool = True, changes_weights: bool = False) -> bool:
        try:
            if needs_model or self.busy:
                self._guard()
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        self.error = ""
        self._job_started = time.monotonic()
        self.job, self.progress, self.busy = name, 0.0, True
        self.status = f"{name} running…"
        self._job = Job(name, work, restore, lambda job: post(self._finish, job, changes_weights)).start()
        return True

    def _finish(self, job: Job, changes_weights: bool = False) -> None:
        if job.error:
            self.error = f"{job.name} failed and was undone: {job.error}"
            self.status = f"{job.name} failed"
        elif job.stopped:
            self.error = ""
            self.status = f"{job.name} stopped; the model is as it was before it"
        else:
            self.error = ""  # messages about changes refused during the run are stale now
            self.status = f"{job.name} finished"
            self.progress = 1.0
        self.busy = False
        self.job = ""
        if changes_weights:
            self._weights_changed()
        if self.model is not None:
            self._refresh()

    def stop(self) -> bool:
        """Ask the current run to stop; it ends after the current batch and restores its snapshot."""
        if self._job is None or not self.busy:
            return self._refuse("Nothing is running.")
        self._job.stop()
        self.status = f"stopping {self._job.name}…"
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ends (for notebooks and tests)."""
        return self._job.join(timeout) if self._job is not None else True

    def _on_record(self, total_steps: int):
        def on_record(record):
            record = dict(record)
            record.update(time=time.time(), **{f"est_{k}": v for k, v in
                                               estimate_sizes(self._training_model, self.weight_bits,
                                                              self._fp32).items()})
            post(self._append_record, record, min(1.0, record["step"] / max(1, total_steps)))
        return on_record

    def _train_config(self, learning_rate: float | None = None) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, learning_rate=learning_rate or self.learning_rate, batch_size=128)

    def _steps(self, config: TrainConfig) -> int:
        return config.epochs * int(np.ceil(len(self.data.y_train) / config.batch_size))

    def fine_tune(self) -> bool:
        """Fine-tune the pruned model: the fine-tune stage, with masks fixed (one shot) or raised along AGP
        to the sparsities the sliders show (polynomial)."""
        if self.model is None:
            return self._refuse("No model loaded yet: load a model and dataset first.")
        run = self.run
        config = self._train_config()
        snapshot = self.model.get_weights()
        previous = (run.prune, run.training["finetune"])
        run.prune = PruneConfig(target="per_layer", sparsity=0.0, layer_sparsity=dict(self.layer_sparsity),
                                schedule=self.schedule, criterion=self.criterion)
        run.training["finetune"] = config
        self._training_model = self.model

        def work(stop):
            self._set(records=[])
            stages.fine_tune(run, on_record=self._on_record(self._steps(config)), stop=stop,
                             record_every=self.record_every)

        def restore():
            self.model.set_weights(snapshot)
            run.prune, run.training["finetune"] = previous

        return self._start("fine-tune", work, restore, changes_weights=True)

    def _quant_config(self) -> QuantConfig:
        return QuantConfig(weight_bits=8, activation_bits=self.activation_bits,
                           layer_weight_bits={k: v for k, v in self.weight_bits.items() if v != 8})

    def quantize(self) -> bool:
        """QAT: the QAT stage at the chosen bits; the float model is unchanged."""
        if self.model is None:
            return self._refuse("No model loaded yet: load a model and dataset first.")
        run = self.run
        config = self._train_config(min(self.learning_rate, 1e-4))
        previous = (run.qat, run.quant, run.training["qat"])
        run.quant, run.training["qat"] = self._quant_config(), config

        def work(stop):
            self._set(records=[])
            self._training_model = self.model
            stages.quantize(run, on_record=self._on_record(self._steps(config)), stop=stop,
                            record_every=self.record_every)
            self._training_model = run.qat

        def restore():
            run.qat, run.quant, run.training["qat"] = previous

        return self._start("QAT", work, restore)

    def export_model(self, label: str | None = None) -> bool:
        """Export the int8 .tflite (the QAT model, or post-training quantization of the pruned model) and
        measure it on the validation split (the Studio chooses; the test split is for final reports)."""
        if self.model is None:
            return self._refuse("No model loaded yet: load a model and dataset first.")
        run = self.run
        if run.qat is None:
            run.quant = self._quant_config()
        previous = (dict(self.export), run.tflite, run.export_target, run.reports.get("speed"))
        run.export_target = self.export_target

        def work(stop):
            self._set(progress=0.3)
            stages.export(run)
            if stop.is_set():
                return
            self._set(progress=0.6)
            figures = stages.measure(run, "validation")
            if stop.is_set():
                return
            self._set(progress=0.8)
            speed = stages.measure_speed(run, seconds=SPEED_SECONDS)
            sizes = {k: v for k, v in run.sizes.items() if k != "tensors"}
            acc, base = figures["int8"]["accuracy"], figures["baseline"]["accuracy"]
            result = {"label": label or f"run {len(self.runs) + 1}", "model": self.model_name,
                      "dataset": self.dataset_name, "qat": run.reports["export"]["qat"], "split": "validation",
                      "int8_accuracy": acc, "int8_ci95": figures["int8"]["ci95"], "baseline_accuracy": base,
                      "delta_points": figures["delta"]["delta_points"], "p_value": figures["delta"]["p_value"],
                      "images": figures["int8"]["n"], "sparsity": self._overall_sparsity(),
                      "micro": run.reports["export"].get("micro"), "export_target": run.export_target,
                      "latency_ms": speed["int8"]["batch1"]["p50_ms"], "speed": speed,
                      "speedup": speed["int8_over_fp32"]["batch1_p50"], "config": self.get_config(), **sizes}
            post(self._add_run, {"tflite": run.tflite, **result}, result)

        def restore():
            self._set(export=previous[0])
            run.tflite, run.export_target = previous[1], previous[2]
            if previous[3] is None:
                run.reports.pop("speed", None)
            else:
                run.reports["speed"] = previous[3]

        return self._start("export", work, restore)

    def _add_run(self, export: dict, run: dict) -> None:
        self.export = export
        self.runs = self.runs + [run]

    def load_weights(self, by_layer: dict, status: str) -> bool:
        """Set the session model's weights, masks included, from {layer name: weights} (a search trial's
        fine-tuned model): all of them, or, when any layer or shape differs, none."""
        try:
            self._guard()
            layers = {layer.name: layer for layer in self.model.layers if layer.weights}
            if set(by_layer) != set(layers):
                raise ConfigError(f"These weights are for layers {sorted(by_layer)}; the session's model has "
                                  f"{sorted(layers)}.")
            for name, weights in by_layer.items():
                want = [tuple(np.shape(v)) for v in layers[name].get_weights()]
                got = [tuple(np.shape(v)) for v in weights]
                if got != want:
                    raise ConfigError(f"Layer {name!r} holds weights of shapes {want}. Received: {got}")
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        for name, weights in by_layer.items():
            layers[name].set_weights(weights)
        self._weights_changed()
        self._refresh(status)
        self.error = ""
        return True

    def _overall_sparsity(self) -> float:
        return sparsity_of(np.concatenate([self.layer(n).get_mask().ravel() for n in self.layers]))

    def scan(self, sparsities=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95), eval_size: int = 300) -> bool:
        """Sensitivity scan of every layer, from the current (pruned) model, on ``eval_size`` validation images;
        on the Dask cluster at ``$DASK_SCHEDULER_ADDRESS`` when one is given (workbench.search.scan)."""
        if self.model is None:
            return self._refuse("No model loaded yet: load a model and dataset first.")
        previous = self.sensitivity
        total = len(self.layers) * len(sparsities)
        rows = []

        def on_point(row):
            rows.append(row)
            self._set(progress=len(rows) / total)

        scheduler = os.environ.get("DASK_SCHEDULER_ADDRESS") or None

        def work(stop):
            scan = sensitivity_scan
            if scheduler:  # a cluster is given: one task per layer there (workbench.search.scan)
                from functools import partial

                from workbench.search.scan import cluster_scan

                scan = partial(cluster_scan, scheduler=scheduler)
            frame = scan(self.model, (self.data.x_val[:eval_size], self.data.y_val[:eval_size]),
                         sparsities=sparsities, criterion=self.criterion,
                         train_data=(self.data.x_train[:1024], self.data.y_train[:1024]),
                         on_point=on_point, stop=stop)
            if not stop.is_set():
                frame.attrs.update(split="validation", images=min(eval_size, len(self.data.y_val)),
                                   start=f"the current model ({self._overall_sparsity():.0%} pruned)",
                                   where=f"Dask cluster {scheduler}" if scheduler else "this kernel")
                self._set(sensitivity=frame)

        def restore():
            self._set(sensitivity=previous)

        try:
            if self.criterion == "taylor" and self.data is None:
                raise ConfigError("The Taylor criterion needs training data.")
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        return self._start("sensitivity scan", work, restore)
