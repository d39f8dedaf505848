"""Pruning schedules: sparsity as a function of the training step (one-shot, polynomial/AGP).

The polynomial schedule is the Automated Gradual Pruner of Zhu & Gupta (2017):
s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0)) ** power.
"""

from __future__ import annotations

import abc

from workbench.config import check_sparsity
from workbench.errors import ConfigError


class PruningSchedule(abc.ABC):
    """Base class: ``sparsity_at(step)``, ``fraction_at(step)`` and ``should_update(step)``."""

    name = "base"

    @abc.abstractmethod
    def sparsity_at(self, step: int) -> float:
        """The global target sparsity at ``step``."""

    @abc.abstractmethod
    def fraction_at(self, step: int) -> float:
        """How far along the schedule is at ``step``: 0 (nothing pruned yet) to 1 (every target reached).

        Per-layer targets are scaled by this fraction, so it must not be derived from
        ``sparsity_at`` (whose final value may be 0 when only per-layer targets are set).
        """

    @abc.abstractmethod
    def should_update(self, step: int) -> bool:
        """Whether the masks change at ``step``."""

    @abc.abstractmethod
    def get_config(self) -> dict:
        """The constructor arguments, JSON-ready."""

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class OneShot(PruningSchedule):
    """Prune to ``sparsity`` once, at ``step``."""

    name = "one_shot"

    def __init__(self, sparsity: float, step: int = 0):
        self.sparsity = check_sparsity(sparsity)
        self.step = int(step)

    def sparsity_at(self, step: int) -> float:
        return self.sparsity if step >= self.step else 0.0

    def fraction_at(self, step: int) -> float:
        return 1.0 if step >= self.step else 0.0

    def should_update(self, step: int) -> bool:
        return step == self.step

    def get_config(self) -> dict:
        return {"sparsity": self.sparsity, "step": self.step}


class PolynomialDecay(PruningSchedule):
    """AGP: sparsity rises from ``initial_sparsity`` to ``final_sparsity`` between two steps."""

    name = "polynomial"

    def __init__(self, final_sparsity: float, begin_step: int, end_step: int, initial_sparsity: float = 0.0,
                 power: float = 3.0, frequency: int = 50):
        self.final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
        self.initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
        if end_step <= begin_step:
            raise ConfigError(f"end_step must be greater than begin_step. Received: begin_step={begin_step}, end_step={end_step}")
        if frequency < 1:
            raise ConfigError(f"frequency must be >= 1. Received: frequency={frequency}")
        self.begin_step, self.end_step = int(begin_step), int(end_step)
        self.power, self.frequency = float(power), int(frequency)

    def progress(self, step: int) -> float:
        t = (step - self.begin_step) / (self.end_step - self.begin_step)
        return min(1.0, max(0.0, t))

    def sparsity_at(self, step: int) -> float:
        if step < self.begin_step:
            return self.initial_sparsity
        p = self.progress(step)
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1.0 - p) ** self.power

    def fraction_at(self, step: int) -> float:
        if step < self.begin_step:
            return 0.0
        return 1.0 - (1.0 - self.progress(step)) ** self.power

    def should_update(self, step: int) -> bool:
        if step < self.begin_step or step > self.end_step:
            return False
        return step == self.end_step or (step - self.begin_step) % self.frequency == 0

    def get_config(self) -> dict:
        return {"final_sparsity": self.final_sparsity, "begin_step": self.begin_step, "end_step": self.end_step,
                "initial_sparsity": self.initial_sparsity, "power": self.power, "frequency": self.frequency}


_REGISTRY = {OneShot.name: OneShot, PolynomialDecay.name: PolynomialDecay}


def serialize(schedule: PruningSchedule) -> dict:
    return {"class_name": schedule.name, "config": schedule.get_config()}


def get(identifier) -> PruningSchedule:
    """A schedule from an instance, or from ``{"class_name": ..., "config": {...}}``."""
    if isinstance(identifier, PruningSchedule):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") in _REGISTRY:
        return _REGISTRY[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ConfigError(f"Unknown pruning schedule. Received: {identifier!r}; expected one of {sorted(_REGISTRY)} "
                      "as {'class_name': name, 'config': {...}}.")
