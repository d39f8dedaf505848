"""Long runs of a SessionState (fine-tune, QAT, export, sensitivity scan) in a background thread.

Each run snapshots what it may change; Stop (or a failure) puts the snapshot back, so the model
is as it was before that step.
"""

from __future__ import annotations

import time

import numpy as np

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError, WorkbenchError
from workbench.export.tflite import evaluate_tflite, export_tflite
from workbench.metrics.estimate import estimate_sizes
from workbench.metrics.size import size_report
from workbench.pruning.sensitivity import sensitivity_scan
from workbench.quantization.api import quantize_model
from workbench.train import accuracy, fit
from workbench.widgets.dispatch import post
from workbench.widgets.jobs import Job


class RunsMixin:
    """Background runs for SessionState; at most one runs at a time."""

    record_every = 5

    def start_job(self, name: str, work, restore) -> bool:
        """Run ``work(stop_event)`` in the background; ``restore()`` undoes it if stopped or failed."""
        return self._start(name, work, restore, needs_model=False)

    def _on_record_plain(self):
        def on_record(record):
            post(self._append_record, dict(record), None)
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

    def _start(self, name: str, work, restore, needs_model: bool = True) -> bool:
        try:
            if needs_model or self.busy:
                self._guard()
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        self.error = ""
        self.job, self.progress, self.busy = name, 0.0, True
        self.status = f"{name} running…"
        self._job = Job(name, work, restore, lambda job: post(self._finish, job)).start()
        return True

    def _finish(self, job: Job) -> None:
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
            if record["kind"] == "epoch":
                record["val_accuracy"] = accuracy(self._training_model, self.eval_x, self.eval_y)
            post(self._append_record, record, min(1.0, record["step"] / max(1, total_steps)))
        return on_record

    def _train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, learning_rate=self.learning_rate, batch_size=128)

    def fine_tune(self) -> bool:
        """Fine-tune the pruned model (masks fixed, or raised along AGP to the current targets)."""
        if self.model is None:
            return self._refuse("No model loaded yet: load a model and dataset first.")
        config = self._train_config()
        data = (self.data.x_train, self.data.y_train)
        steps = config.epochs * int(np.ceil(len(data[1]) / config.batch_size))
        snapshot = self.model.get_weights() if self.model is not None else None
        targets = dict(self.layer_sparsity)
        prune = PruneConfig(target="per_layer", sparsity=0.0, layer_sparsity=targets, schedule="polynomial",
                            criterion=self.criterion) if self.schedule == "polynomial" and any(targets.values()) \
            else None
        self._training_model = self.model

        def work(stop):
            self._set(records=[])
            return fit(self.model, data, config, prune=prune, on_record=self._on_record(steps), stop=stop,
                       phase="finetune", record_every=self.record_every)

        def restore():
            self.model.set_weights(snapshot)

        return self._start("fine-tune", work, restore)

    def quantize(self) -> bool:
        """QAT: quantize the pruned model at the chosen bits and train it; the float model is unchanged."""
        if self.model is None:
            return self._refuse("No model loaded yet: load a model and dataset first.")
        config = self._train_config()
        data = (self.data.x_train, self.data.y_train)
        steps = config.epochs * int(np.ceil(len(data[1]) / config.batch_size))
        previous = self.qat_model
        quant = QuantConfig(weight_bits=8, activation_bits=self.activation_bits,
                            layer_weight_bits={k: v for k, v in self.weight_bits.items() if v != 8})

        def work(stop):
            qat, _ = quantize_model(self.model, quant, calibration_data=self.data.x_train[:512])
            self._training_model = qat
            self._set(records=[])
            fit(qat, data, TrainConfig(epochs=config.epochs, learning_rate=min(config.learning_rate, 1e-4)),
                on_record=self._on_record(steps), stop=stop, phase="qat", record_every=self.record_every)
            if not stop.is_set():
                self.qat_model = qat  # a plain attribute, not a trait: safe from the worker

        def restore():
            self.qat_model = previous

        return self._start("QAT", work, restore)

    def export_model(self, label: str | None = None) -> bool:
        """Export the int8 .tflite (QAT model, or post-training quantization of the pruned model)."""
        if self.model is None:
            return self._refuse("No model loaded yet: load a model and dataset first.")
        source = self.qat_model
        if source is None:
            quant = QuantConfig(weight_bits=8, activation_bits=self.activation_bits,
                                layer_weight_bits={k: v for k, v in self.weight_bits.items() if v != 8})
        previous = dict(self.export)

        def work(stop):
            model = source
            if model is None:
                model, _ = quantize_model(self.model, quant, calibration_data=self.data.x_train[:512])
            self._set(progress=0.3)
            data, _ = export_tflite(model, self.data.x_train[:300])
            if stop.is_set():
                return
            self._set(progress=0.7)
            acc = evaluate_tflite(data, self.data.x_test, self.data.y_test)
            sizes = size_report(self._fp32, data).to_dict()
            sizes.pop("tensors")
            base = accuracy(self.baseline, self.data.x_test, self.data.y_test)
            run = {"label": label or f"run {len(self.runs) + 1}", "model": self.model_name,
                   "dataset": self.dataset_name, "qat": source is not None, "int8_accuracy": acc,
                   "baseline_accuracy": base, "delta_points": 100 * (acc - base),
                   "sparsity": self._overall_sparsity(), "config": self.get_config(), **sizes}
            post(self._add_run, {"tflite": data, **run}, run)

        def restore():
            self._set(export=previous)

        return self._start("export", work, restore)

    def _add_run(self, export: dict, run: dict) -> None:
        self.export = export
        self.runs = self.runs + [run]

    def _overall_sparsity(self) -> float:
        total = sum(self.layer(n).get_mask().size for n in self.layers)
        zeros = sum(int((self.layer(n).get_mask() == 0).sum()) for n in self.layers)
        return zeros / total if total else 0.0

    def scan(self, sparsities=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95), eval_size: int = 300) -> bool:
        """Sensitivity scan of every layer on a fixed evaluation subset."""
        if self.model is None:
            return self._refuse("No model loaded yet: load a model and dataset first.")
        previous = self.sensitivity
        total = len(self.layers) * len(sparsities)
        rows = []

        def on_point(row):
            rows.append(row)
            self._set(progress=len(rows) / total)

        def work(stop):
            frame = sensitivity_scan(self.model, (self.eval_x[:eval_size], self.eval_y[:eval_size]),
                                     sparsities=sparsities, criterion=self.criterion,
                                     train_data=(self.data.x_train[:1024], self.data.y_train[:1024]),
                                     on_point=on_point, stop=stop)
            if not stop.is_set():
                self._set(sensitivity=frame)

        def restore():
            self._set(sensitivity=previous)

        try:
            if self.criterion == "taylor" and self.data is None:
                raise ConfigError("The Taylor criterion needs training data.")
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        return self._start("sensitivity scan", work, restore)
