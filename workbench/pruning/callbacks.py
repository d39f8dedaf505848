"""PruningCallback: raises sparsity during fine-tuning along a schedule (AGP)."""

from __future__ import annotations

import keras
import numpy as np

from workbench.config import PruneConfig
from workbench.pruning.api import apply_masks, compute_masks, layer_scores
from workbench.pruning.schedules import OneShot, PolynomialDecay, PruningSchedule


def schedule_for(config: PruneConfig, total_steps: int) -> PruningSchedule:
    """The schedule a PruneConfig describes, over ``total_steps`` training steps."""
    if config.schedule == "one_shot":
        return OneShot(config.sparsity, config.begin_step)
    end = config.end_step if config.end_step != -1 else max(config.begin_step + 1, int(0.7 * total_steps))
    frequency = max(1, min(config.frequency, (end - config.begin_step) // 4 or 1))
    return PolynomialDecay(config.sparsity, config.begin_step, end, frequency=frequency)


def prune_to_fraction(model, config: PruneConfig, fraction: float, data=None, batch_size: int = 128) -> None:
    """Set the masks of a wrapped model ``fraction`` (0..1) of the way to every target of ``config``."""
    scores = layer_scores(model, config.criterion, data, batch_size, config.taylor_batches)
    apply_masks(model, compute_masks(scores, config, sparsity=fraction * config.sparsity, fraction=fraction))


class PruningCallback(keras.callbacks.Callback):
    """Update the masks of a wrapped model whenever the schedule says so."""

    def __init__(self, config: PruneConfig, total_steps: int, data=None, batch_size: int = 128):
        super().__init__()
        self.config = config
        self.schedule = schedule_for(config, total_steps)
        self.data = data
        self.batch_size = batch_size
        self.step = 0
        self.history: list[tuple[int, float]] = []

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule.should_update(self.step):
            self.update(self.schedule.fraction_at(self.step))
        self.step += 1

    def update(self, fraction: float) -> None:
        """Prune to ``fraction`` of the way to every target: the global sparsity and each layer's."""
        data = None
        if self.config.criterion == "taylor" and self.data is not None:
            x, y = self.data
            pick = np.random.default_rng(self.step).choice(len(x), size=min(len(x), self.config.taylor_batches
                                                                            * self.batch_size), replace=False)
            data = (x[pick], y[pick])
        prune_to_fraction(self.model, self.config, fraction, data, self.batch_size)
        self.history.append((self.step, float(fraction)))

    def on_train_end(self, logs=None):
        # A run stopped early, or one too short for the last update, still ends at its targets.
        if not self.history or self.history[-1][1] < 1.0:
            self.update(1.0)
