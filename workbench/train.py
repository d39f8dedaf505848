"""Training and fine-tuning with observers: records per batch/epoch and a cooperative stop."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Callable

import keras
import numpy as np

from workbench.config import PruneConfig, TrainConfig
from workbench.errors import ConfigError
from workbench.nn.evaluate import accuracy, correct_predictions, loss_for  # noqa: F401 (re-exported)
from workbench.pruning.callbacks import PruningCallback


LR_FACTOR = 0.3  # learning-rate drop on a validation plateau (early-stopping runs)
MIN_LR_FRACTION = 0.01  # ... down to this fraction of the configured rate


class PlateauFrom(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` that, like ``EarlyStopping(start_from_epoch=...)``, ignores the first
    ``start_from_epoch`` epochs: while a model's validation accuracy is meaningless (MobileNet's BatchNorm
    moving statistics not yet settled: MobileNet v1 at width 0.25 validates at 10% for 3 epochs while it
    trains at 66%), a flat start would cut the learning rate to its floor before training began."""

    def __init__(self, start_from_epoch: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.start_from_epoch = int(start_from_epoch)

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_from_epoch:
            return super().on_epoch_end(epoch, logs)
        if logs is not None:  # every epoch's record keeps its rate (the history's lists stay aligned)
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class RecordCallback(keras.callbacks.Callback):
    """Emit dict records (phase, epoch, step, loss, accuracy, ...) to ``on_record``; honour a stop event."""

    def __init__(self, on_record: Callable[[dict], None] | None = None, stop: threading.Event | None = None,
                 every: int = 10, phase: str = "train"):
        super().__init__()
        self.on_record = on_record
        self.stop = stop
        self.every = max(1, int(every))
        self.phase = phase
        self.epoch = 0
        self.step = 0
        self.stopped = False

    def _emit(self, record):
        if self.on_record is not None:
            self.on_record(record)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        logs = logs or {}
        if self.step % self.every == 0:
            self._emit({"phase": self.phase, "kind": "batch", "epoch": self.epoch, "step": self.step,
                        "loss": float(logs.get("loss", math.nan)), "accuracy": float(logs.get("accuracy", math.nan))})
        if self.stop is not None and self.stop.is_set():
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._emit({"phase": self.phase, "kind": "epoch", "epoch": epoch + 1, "step": self.step,
                    "loss": float(logs.get("loss", math.nan)), "accuracy": float(logs.get("accuracy", math.nan)),
                    "val_loss": float(logs.get("val_loss", math.nan)),
                    "val_accuracy": float(logs.get("val_accuracy", math.nan))})


@dataclasses.dataclass
class TrainReport:
    """What one fit() did: epochs run, the epoch whose weights were kept, and the rule that decided."""

    epochs_run: int
    steps: int
    seconds: float
    history: dict
    stopped: bool
    best_epoch: int = 0  # 1-based epoch whose weights the model holds (the last one without early stopping)
    rule: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def compile_model(model: keras.Model, learning_rate: float) -> None:
    """Compile with Adam, with every variable of the train step made now: the optimizer's slots and the
    accuracy metric's counters. Made lazily inside the first traced step (as Keras does for
    ``metrics=["accuracy"]``), they make tf.function trace the whole step twice (a step that creates
    variables is traced again without them): that doubled the fixed cost of every fit() call."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss_for(model),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    model.optimizer.build(model.trainable_variables)


def fit(model: keras.Model, data, config: TrainConfig | None = None, prune: PruneConfig | None = None,
        on_record=None, stop: threading.Event | None = None, validation=None, phase: str = "train",
        callbacks=(), record_every: int = 10) -> TrainReport:
    """Train ``model`` in place on ``data`` = (x, y).

    With ``prune`` using the polynomial schedule (and a PruneWrapper model), sparsity rises along
    the AGP schedule and ends at the targets; otherwise masks stay fixed. ``validation`` = (x, y)
    is evaluated after every epoch (records carry ``val_accuracy``); with ``config.patience`` it
    drives early stopping. ``stop`` ends training after the current batch.
    """
    config = config or TrainConfig()
    x, y = data
    if config.limit:
        x, y = x[:config.limit], y[:config.limit]
    if config.patience and validation is None:
        raise ConfigError(f"patience={config.patience} (early stopping) needs the validation split. "
                          "Received: validation=None; pass validation=(x_val, y_val) or set patience=0.")
    if config.patience and prune is not None and prune.schedule == "polynomial":
        raise ConfigError("Early stopping would restore masks from the middle of the pruning schedule. "
                          f"Received: patience={config.patience} with schedule='polynomial'; set patience=0.")
    keras.utils.set_random_seed(config.seed)
    compile_model(model, config.learning_rate)
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    recorder = RecordCallback(on_record, stop, every=record_every, phase=phase)
    cbs = [recorder, *callbacks]
    early = None
    if config.patience:
        # To convergence: the learning rate drops on a plateau of validation accuracy, and training stops
        # when it has not improved for `patience` epochs (the best epoch's weights are kept).
        # Both watch from min_epochs on: the first epochs train at the configured rate.
        cbs.append(PlateauFrom(start_from_epoch=config.min_epochs, monitor="val_accuracy", mode="max",
                               factor=LR_FACTOR, patience=max(1, config.patience // 2),
                               min_lr=config.learning_rate * MIN_LR_FRACTION, verbose=0))
        early = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=config.patience,
                                              restore_best_weights=True, start_from_epoch=config.min_epochs)
        cbs.append(early)
    if prune is not None and prune.schedule == "polynomial":
        cbs.insert(0, PruningCallback(prune, config.epochs * steps_per_epoch, data=(x, y),
                                      batch_size=config.batch_size))
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, verbose=0, callbacks=cbs,
                        validation_data=validation, shuffle=True)
    if not recorder.stopped:
        recalibrate_batchnorm(model, x)
    epochs_run = len(history.history.get("loss", []))
    best = epochs_run
    if early is not None and early.best_weights is not None and "val_accuracy" in history.history:
        watched = history.history["val_accuracy"][config.min_epochs:]  # early stopping watches from min_epochs
        best = config.min_epochs + int(np.argmax(watched)) + 1 if watched else epochs_run
    return TrainReport(epochs_run, recorder.step, time.perf_counter() - start,
                       {k: [float(v) for v in vals] for k, vals in history.history.items()}, recorder.stopped,
                       best_epoch=best, rule=config.rule())


def recalibrate_batchnorm(model: keras.Model, images: np.ndarray, batch_size: int = 256, batches: int = 8) -> int:
    """Set BatchNorm moving statistics to the average batch statistics over ``images``.

    Moving averages with momentum 0.99 need thousands of steps to forget their initial
    (mean 0, variance 1); after a short run they can be far from the real statistics and the
    model then fails in inference mode. Returns how many BatchNorm layers were recalibrated.
    """
    layers = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    if not layers or len(images) == 0:
        return 0
    saved = [layer.momentum for layer in layers]
    try:
        for i, start in enumerate(range(0, min(len(images), batches * batch_size), batch_size)):
            for layer in layers:
                layer.momentum = i / (i + 1)  # running mean of the batch statistics
            model(images[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return len(layers)
