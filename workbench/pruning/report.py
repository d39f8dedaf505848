"""PruneReport: what prune_model pruned, per layer, and what it skipped and why."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class LayerPruning:
    name: str
    kind: str
    params: int
    nonzeros: int
    threshold: float

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzeros / self.params if self.params else 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sparsity"] = self.sparsity
        return d


@dataclasses.dataclass
class PruneReport:
    """Per-layer outcome of a pruning step."""

    criterion: str
    target: str
    schedule: str
    layers: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)  # (layer name, reason)
    split: dict = dataclasses.field(default_factory=dict)  # SeparableConv2D name: [its depthwise, its pointwise]
    model_params: int = 0  # every weight of the model (kernels, biases, BatchNorm; not the masks)
    model_zeros: int = 0  # of those, how many are zero (pruned kernels count their masked entries)

    @property
    def model_sparsity(self) -> float:
        """Fraction of zeros over every weight of the model, pruned layers or not."""
        return self.model_zeros / self.model_params if self.model_params else 0.0

    @property
    def sparsity(self) -> float:
        """Overall fraction of zeros across the pruned layers' kernels."""
        params = sum(layer.params for layer in self.layers)
        return 1.0 - sum(layer.nonzeros for layer in self.layers) / params if params else 0.0

    def to_dict(self) -> dict:
        return {"criterion": self.criterion, "target": self.target, "schedule": self.schedule,
                "sparsity": self.sparsity, "layers": [layer.to_dict() for layer in self.layers],
                "skipped": [list(s) for s in self.skipped], "split": dict(self.split),
                "model": {"params": self.model_params, "zeros": self.model_zeros, "sparsity": self.model_sparsity}}


def layer_record(name: str, kind: str, mask: np.ndarray, scores: np.ndarray) -> LayerPruning:
    pruned = scores[np.asarray(mask) == 0]
    threshold = float(pruned.max()) if pruned.size else 0.0
    return LayerPruning(name, kind, int(mask.size), int(np.count_nonzero(mask)), threshold)
