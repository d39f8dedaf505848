"""The search space: which settings a trial samples, and how a trial's parameters become pipeline configs.

Per prunable layer: its density (1 - sparsity), sampled on a log scale so that 0.95 to 0.995
sparsity is as reachable as 0 to 0.5, its weight bits and, optionally, its k-means clusters.
Globally: the activation bits and the fine-tune epochs and learning rate. A trial's parameters
map to a PruneConfig + QuantConfig + TrainConfigs that ``compress()`` takes as they are.
"""

from __future__ import annotations

import dataclasses
import math

from workbench.config import PruneConfig, QuantConfig, TrainConfig, _RoundTrip, check_bits, check_clusters
from workbench.errors import ConfigError


def _choices(values, name: str, check) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{name} must be a list of choices. Received: {name}={values!r}")
    values = tuple(check(v, name) for v in values)
    if not values:
        raise ConfigError(f"{name} needs at least one choice. Received: {name}=[]")
    return tuple(sorted(set(values)))


@dataclasses.dataclass(frozen=True)
class SearchSpace(_RoundTrip):
    """What the search varies, and within which ranges.

    Attributes:
        min_density, max_density: the range of each layer's kept fraction of weights (log scale);
            0.005 allows 99.5% sparsity, 1.0 allows leaving a layer dense.
        weight_bits: per-layer weight bit choices (2..8; 4 bits and fewer are packed as INT4).
        activation_bits: the global activation bit choices.
        clusters: per-layer k-means choices (0 = off); empty leaves weight sharing out of the search.
        finetune_epochs: (least, most) fine-tune epochs of a trial.
        learning_rate: (lowest, highest) fine-tune learning rate, log scale.
        qat_epochs, qat_learning_rate: the QAT stage of every trial (fixed).
        schedule, frequency: the pruning schedule of every trial (polynomial: AGP over the fine-tune).
        layers: the layers to search (default: every prunable layer of the model).
        exclude: layers never pruned (and left at 8 bits).
        structured: {layer: most fraction} of whole filters (Conv2D) or neurons (Dense) a trial may
            remove physically before masking, e.g. {"fc1": 0.9}; empty leaves it out of the search.
    """

    min_density: float = 0.005
    max_density: float = 1.0
    weight_bits: tuple = (2, 3, 4, 5, 6, 8)
    activation_bits: tuple = (6, 7, 8)
    clusters: tuple = ()
    finetune_epochs: tuple = (2, 8)
    learning_rate: tuple = (1e-4, 2e-3)
    qat_epochs: int = 1
    qat_learning_rate: float = 1e-4
    schedule: str = "polynomial"
    frequency: int = 25
    layers: tuple = ()
    exclude: tuple = ()
    structured: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "structured", dict(PruneConfig(structured=self.structured).structured))
        for name in ("min_density", "max_density"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
                raise ConfigError(f"{name} must be a fraction in (0, 1]. Received: {name}={value!r}")
        if self.min_density > self.max_density:
            raise ConfigError(f"min_density must not exceed max_density. Received: min_density={self.min_density!r}, "
                              f"max_density={self.max_density!r}")
        object.__setattr__(self, "weight_bits", _choices(self.weight_bits, "weight_bits", check_bits))
        object.__setattr__(self, "activation_bits", _choices(self.activation_bits, "activation_bits", check_bits))
        clusters = () if self.clusters in ((), []) else _choices(self.clusters, "clusters", check_clusters)
        object.__setattr__(self, "clusters", clusters)
        object.__setattr__(self, "finetune_epochs", self._range("finetune_epochs", self.finetune_epochs, int))
        object.__setattr__(self, "learning_rate", self._range("learning_rate", self.learning_rate, float))
        if self.learning_rate[0] <= 0:
            raise ConfigError(f"learning_rate must lie in (0, 10]. Received: learning_rate={self.learning_rate!r}")
        TrainConfig(epochs=self.finetune_epochs[1], learning_rate=self.learning_rate[1])  # checks the bounds
        TrainConfig(epochs=self.qat_epochs, learning_rate=self.qat_learning_rate)
        PruneConfig(schedule=self.schedule, frequency=self.frequency)
        for name in ("layers", "exclude"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name} must be a list of layer names. Received: {name}={value!r}")
            object.__setattr__(self, name, tuple(value))

    @staticmethod
    def _range(name, value, kind) -> tuple:
        if not isinstance(value, (list, tuple)) or len(value) != 2 or any(isinstance(v, bool) for v in value):
            raise ConfigError(f"{name} must be a (least, most) pair. Received: {name}={value!r}")
        try:
            low, high = kind(value[0]), kind(value[1])
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must hold two numbers. Received: {name}={value!r}") from None
        if kind is int and (low != value[0] or high != value[1]):
            raise ConfigError(f"{name} must hold whole numbers. Received: {name}={value!r}")
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or low > high:
            raise ConfigError(f"{name} must be a (least, most) pair with 0 <= least <= most. Received: {name}={value!r}")
        return low, high

    # -- trials --------------------------------------------------------------------------------------------
    def searched_layers(self, prunable: list[str]) -> list[str]:
        """The layers this space varies, out of the model's prunable layers (in model order)."""
        unknown = sorted(set(self.layers) - set(prunable))
        if unknown:
            raise ConfigError(f"SearchSpace.layers names {unknown}, which the model cannot prune. Its prunable "
                              f"layers: {prunable}.")
        chosen = [name for name in prunable if not self.layers or name in self.layers]
        chosen = [name for name in chosen if name not in self.exclude]
        if not chosen:
            raise ConfigError(f"The search space holds no layer to search. Received: layers={list(self.layers)}, "
                              f"exclude={list(self.exclude)}; the model's prunable layers: {prunable}.")
        return chosen

    def sample(self, trial, layers: list[str]) -> dict:
        """Sample one trial's parameters with an Optuna trial (``suggest_*``); returns the parameters."""
        for name in layers:
            trial.suggest_float(f"density:{name}", self.min_density, self.max_density, log=True)
            trial.suggest_categorical(f"bits:{name}", list(self.weight_bits))
            if self.clusters:
                trial.suggest_categorical(f"clusters:{name}", list(self.clusters))
        for name, most in self.structured.items():
            trial.suggest_float(f"structured:{name}", 0.0, most)
        trial.suggest_categorical("activation_bits", list(self.activation_bits))
        trial.suggest_int("finetune_epochs", *self.finetune_epochs)
        trial.suggest_float("learning_rate", *self.learning_rate, log=True)
        return dict(trial.params)

    def configs(self, params: dict, seed: int = 0) -> dict:
        """{'prune', 'quant', 'finetune', 'qat'}: the pipeline settings of a trial's parameters."""
        layers = [key.split(":", 1)[1] for key in params if key.startswith("density:")]
        sparsity = {name: round(1.0 - float(params[f"density:{name}"]), 6) for name in layers}
        structured = {key.split(":", 1)[1]: round(float(value), 4) for key, value in params.items()
                      if key.startswith("structured:") and value > 0}
        prune = PruneConfig(target="per_layer", sparsity=0.0, layer_sparsity=sparsity, schedule=self.schedule,
                            frequency=self.frequency, exclude=self.exclude, structured=structured)
        clusters = {name: int(params[f"clusters:{name}"]) for name in layers if f"clusters:{name}" in params}
        quant = QuantConfig(weight_bits=8, activation_bits=int(params["activation_bits"]),
                            layer_weight_bits={name: int(params[f"bits:{name}"]) for name in layers},
                            layer_clusters={k: v for k, v in clusters.items() if v})
        finetune = TrainConfig(epochs=int(params["finetune_epochs"]), learning_rate=float(params["learning_rate"]),
                               seed=seed)
        qat = TrainConfig(epochs=self.qat_epochs, learning_rate=self.qat_learning_rate, seed=seed)
        return {"prune": prune, "quant": quant, "finetune": finetune, "qat": qat}

    def params_for(self, sparsity: dict, bits: int | dict = 8, activation_bits: int = 8,
                   finetune_epochs: int | None = None, learning_rate: float | None = None,
                   structured: dict | None = None) -> dict:
        """Parameters (for ``study.enqueue_trial``) of given per-layer sparsities, clipped into the space."""
        params = {}
        for name, s in sparsity.items():
            density = min(max(1.0 - float(s), self.min_density), self.max_density)
            params[f"density:{name}"] = density
            wanted = bits.get(name, 8) if isinstance(bits, dict) else bits
            params[f"bits:{name}"] = min(self.weight_bits, key=lambda b: (abs(b - wanted), -b))
            if self.clusters:
                params[f"clusters:{name}"] = self.clusters[0]
        for name, most in self.structured.items():
            params[f"structured:{name}"] = min(float((structured or {}).get(name, 0.0)), most)
        params["activation_bits"] = min(self.activation_bits, key=lambda b: (abs(b - activation_bits), -b))
        low, high = self.finetune_epochs
        params["finetune_epochs"] = int(min(max(finetune_epochs or (low + high + 1) // 2, low), high))
        lr = learning_rate or math.sqrt(self.learning_rate[0] * self.learning_rate[1])
        params["learning_rate"] = float(min(max(lr, self.learning_rate[0]), self.learning_rate[1]))
        return params

    def params_from(self, layers: list[str], prune=None, quant=None, finetune=None) -> dict:
        """Parameters (for ``study.enqueue_trial``) of given pipeline settings, a hand-tuned recipe for instance,
        so that a search can start from what its user already has. ``prune`` (per-layer or uniform sparsity),
        ``quant`` and ``finetune`` are configs or their dicts; each searched layer (``layers``) takes its own
        setting or the config's default; values outside the space are clipped into it (bits to the nearest
        choice)."""
        prune = _config(PruneConfig, prune, "prune")
        quant = _config(QuantConfig, quant, "quant")
        finetune = _config(TrainConfig, finetune, "finetune")
        if prune.target not in ("per_layer", "global"):  # PruneConfig refuses layer_sparsity without per_layer
            raise ConfigError("A search starts from per-layer sparsities: give target='per_layer' (or a uniform "
                              f"sparsity). Received: target={prune.target!r}")
        if prune.target == "global" and prune.sparsity > 0:
            raise ConfigError("A global magnitude target sets no sparsity per layer, so it cannot start a search; "
                              "give target='per_layer' with layer_sparsity. Received: target='global', "
                              f"sparsity={prune.sparsity!r}")
        off_space = sorted(set(prune.structured) - set(self.structured))
        if off_space:
            raise ConfigError(f"The recipe removes whole filters or neurons of {off_space}, which this search space "
                              f"leaves whole; add them to SearchSpace.structured. Received: "
                              f"structured={prune.structured!r}, the space's: {self.structured!r}")
        sparsity = {name: prune.layer_sparsity.get(name, prune.sparsity) for name in layers}
        bits = {name: quant.layer_weight_bits.get(name, quant.weight_bits) for name in layers}
        return self.params_for(sparsity, bits=bits, activation_bits=quant.activation_bits,
                               finetune_epochs=finetune.epochs, learning_rate=finetune.learning_rate,
                               structured=prune.structured)


def _config(kind, value, name: str):
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    if isinstance(value, dict):
        return kind.from_config(value)
    raise ConfigError(f"{name} must be a {kind.__name__} or its dict. Received: {type(value).__name__}")


def warm_start_sparsities(scan, tolerance_points: float) -> dict:
    """Per layer, the largest scanned sparsity whose accuracy drop (pruned alone) is within a tolerance.

    ``scan``: the DataFrame of ``sensitivity_scan`` (layer, sparsity, accuracy); its sparsity 0 row (or
    the best row) is each layer's reference.
    """
    chosen = {}
    for name, rows in scan.groupby("layer", sort=False):
        reference = float(rows["accuracy"].max())
        ok = rows[(reference - rows["accuracy"]) * 100.0 <= tolerance_points + 1e-9]
        chosen[name] = float(ok["sparsity"].max()) if len(ok) else 0.0
    return chosen
