"""Frozen, validated settings for pruning, quantization and training; each round-trips to dict/JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from workbench.errors import ConfigError

CRITERIA = ("magnitude", "taylor")
SCHEDULES = ("one_shot", "polynomial")
TARGETS = ("global", "per_layer", "threshold")
MIN_BITS, MAX_BITS = 2, 8
MIN_CLUSTERS, MAX_CLUSTERS = 2, 256


def _is_whole(value: Any) -> bool:
    """True for an int or an integral float (not a bool, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or value.is_integer()


def check_sparsity(value: Any, name: str = "sparsity") -> float:
    """Return ``value`` as a float in [0, 1) or raise ConfigError."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a fraction in [0, 1). Received: {name}={value!r}") from None
    if not 0.0 <= value < 1.0 or value != value:
        raise ConfigError(
            f"{name} must be a fraction in [0, 1) (0.9 prunes 90% of the weights). Received: {name}={value!r}"
        )
    return value


def check_bits(value: Any, name: str = "bits") -> int:
    """Return ``value`` as an int in [2, 8] or raise ConfigError."""
    if not _is_whole(value):
        raise ConfigError(f"{name} must be a whole number from {MIN_BITS} to {MAX_BITS}. Received: {name}={value!r}")
    value = int(value)
    if not MIN_BITS <= value <= MAX_BITS:
        raise ConfigError(
            f"{name} must be from {MIN_BITS} to {MAX_BITS} (values live in an int8 container). "
            f"Received: {name}={value!r}"
        )
    return value


def check_clusters(value, name: str = "clusters") -> int:
    """Return ``value`` as 0 (no sharing) or a whole number in [2, 256], or raise ConfigError."""
    if not _is_whole(value):
        raise ConfigError(f"{name} must be 0 (off) or a whole number from {MIN_CLUSTERS} to {MAX_CLUSTERS}. "
                          f"Received: {name}={value!r}")
    value = int(value)
    if value != 0 and not MIN_CLUSTERS <= value <= MAX_CLUSTERS:
        raise ConfigError(f"{name} must be 0 (off) or from {MIN_CLUSTERS} to {MAX_CLUSTERS} (an int8 container "
                          f"holds at most 256 values). Received: {name}={value!r}")
    return value


MAX_BATCH_SIZE = 65536
MAX_EPOCHS = 10000


def _mapping(value: Any, name: str) -> dict:
    """A {layer name: value} mapping, or ConfigError saying what was received."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must map layer names to values, e.g. {{'fc1': 0.9}}. "
                          f"Received: {name}={value!r}"[:300])
    return dict(value)


def _names(value: Any, name: str) -> tuple:
    """A tuple of layer names: a list or tuple of strings (a lone string is one name, not its letters)."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of layer names, e.g. ['conv1']. Received: {name}={value!r}"[:300])
    return tuple(value)


def _check_choice(value: Any, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}. Received: {name}={value!r}")
    return value


class _RoundTrip:
    """Mixin: ``get_config``/``from_config`` and JSON for frozen dataclasses."""

    def get_config(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]):
        if not isinstance(config, Mapping):
            raise ConfigError(f"{cls.__name__} config must be a mapping. Received: {type(config).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ConfigError(f"Unknown {cls.__name__} keys {unknown}; allowed keys are {sorted(names)}.")
        return cls(**dict(config))

    def to_json(self) -> str:
        return json.dumps(self.get_config(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{cls.__name__} JSON is malformed: {exc}") from None
        return cls.from_config(data)


@dataclasses.dataclass(frozen=True)
class PruneConfig(_RoundTrip):
    """How to prune.

    Attributes:
        sparsity: fraction of weights to remove, in [0, 1); with target="global" it is shared
            by all prunable layers, with "per_layer" it is the default for layers missing
            from ``layer_sparsity``.
        target: "global", "per_layer" or "threshold" (absolute |w| or score thresholds).
        criterion: "magnitude" (|w|) or "taylor" (|w * dL/dw| accumulated over batches).
        layer_sparsity: per-layer sparsities, by layer name.
        layer_threshold: per-layer thresholds, by layer name (target="threshold").
        schedule: "one_shot" or "polynomial" (AGP, Zhu & Gupta 2017).
        begin_step, end_step, frequency: polynomial schedule steps (end_step -1 = end of fine-tuning).
        taylor_batches: batches accumulated for the Taylor score.
        exclude: layer names never pruned.
        structured: fractions of whole filters (Conv2D) or neurons (Dense) to remove physically before
            masking, by layer name (Li et al. 2017's L1 ranking; see ``workbench.pruning.structured``).
    """

    sparsity: float = 0.9
    target: str = "global"
    criterion: str = "magnitude"
    layer_sparsity: dict = dataclasses.field(default_factory=dict)
    layer_threshold: dict = dataclasses.field(default_factory=dict)
    schedule: str = "one_shot"
    begin_step: int = 0
    end_step: int = -1
    frequency: int = 50
    taylor_batches: int = 8
    exclude: tuple = ()
    structured: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))
        object.__setattr__(self, "structured", {str(k): check_sparsity(v, f"structured[{k!r}]")
                                                for k, v in _mapping(self.structured, "structured").items()})
        _check_choice(self.target, TARGETS, "target")
        _check_choice(self.criterion, CRITERIA, "criterion")
        _check_choice(self.schedule, SCHEDULES, "schedule")
        layer_sparsity = {str(k): check_sparsity(v, f"layer_sparsity[{k!r}]")
                          for k, v in _mapping(self.layer_sparsity, "layer_sparsity").items()}
        object.__setattr__(self, "layer_sparsity", layer_sparsity)
        thresholds = {}
        for k, v in _mapping(self.layer_threshold, "layer_threshold").items():
            try:
                t = float(v)
            except (TypeError, ValueError):
                t = float("nan")
            if not t >= 0.0 or t == float("inf"):
                raise ConfigError(f"layer_threshold[{k!r}] must be a number >= 0. Received: {v!r}")
            thresholds[str(k)] = t
        object.__setattr__(self, "layer_threshold", thresholds)
        object.__setattr__(self, "exclude", _names(self.exclude, "exclude"))
        for name in ("begin_step", "frequency", "taylor_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name != "begin_step" else 0):
                raise ConfigError(f"{name} must be a positive whole number. Received: {name}={value!r}")
        if self.layer_sparsity and self.target != "per_layer":
            raise ConfigError(f"layer_sparsity sets per-layer targets, so it needs target='per_layer'. Received: "
                              f"target={self.target!r}, layer_sparsity={layer_sparsity!r}")
        if self.layer_threshold and self.target != "threshold":
            raise ConfigError(f"layer_threshold needs target='threshold'. Received: target={self.target!r}")
        if isinstance(self.end_step, bool) or not isinstance(self.end_step, int) or (
                self.end_step != -1 and self.end_step <= self.begin_step):
            raise ConfigError(f"end_step must be -1 or greater than begin_step. Received: end_step={self.end_step!r}")


@dataclasses.dataclass(frozen=True)
class QuantConfig(_RoundTrip):
    """How to quantize (QAT with fake-quant ops).

    Attributes:
        weight_bits: default weight bits, 2..8 (stored in an int8 container).
        activation_bits: activation bits, 2..8.
        layer_weight_bits: per-layer weight bits, by layer name.
        ema_decay: decay of the activation range moving averages.
        fold_batchnorm: fold BatchNorm into the preceding conv before QAT.
        clusters: k-means weight sharing (Deep Compression's codebooks): 0 = off, else 2..256
            shared values per layer, kept through QAT (the centroids train) and export.
        layer_clusters: per-layer clusters, by layer name.
    """

    weight_bits: int = 8
    activation_bits: int = 8
    layer_weight_bits: dict = dataclasses.field(default_factory=dict)
    ema_decay: float = 0.99
    fold_batchnorm: bool = True
    clusters: int = 0
    layer_clusters: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "clusters", check_clusters(self.clusters))
        clusters = {str(k): check_clusters(v, f"layer_clusters[{k!r}]")
                    for k, v in _mapping(self.layer_clusters, "layer_clusters").items()}
        object.__setattr__(self, "layer_clusters", clusters)
        object.__setattr__(self, "weight_bits", check_bits(self.weight_bits, "weight_bits"))
        object.__setattr__(self, "activation_bits", check_bits(self.activation_bits, "activation_bits"))
        bits = {str(k): check_bits(v, f"layer_weight_bits[{k!r}]")
                for k, v in _mapping(self.layer_weight_bits, "layer_weight_bits").items()}
        object.__setattr__(self, "layer_weight_bits", bits)
        if not isinstance(self.fold_batchnorm, bool):
            raise ConfigError(f"fold_batchnorm must be true or false. Received: fold_batchnorm={self.fold_batchnorm!r}")
        if isinstance(self.ema_decay, bool) or not isinstance(self.ema_decay, (int, float)) \
                or not 0.0 < float(self.ema_decay) < 1.0:
            raise ConfigError(f"ema_decay must be in (0, 1). Received: ema_decay={self.ema_decay!r}")

    def weight_bits_for(self, layer_name: str) -> int:
        return self.layer_weight_bits.get(layer_name, self.weight_bits)

    def clusters_for(self, layer_name: str) -> int:
        return self.layer_clusters.get(layer_name, self.clusters)


@dataclasses.dataclass(frozen=True)
class TrainConfig(_RoundTrip):
    """How to train or fine-tune.

    Attributes:
        epochs: epochs to train; with ``patience`` the most epochs to train.
        batch_size, learning_rate, seed: as in Keras (Adam).
        patience: 0 trains for ``epochs``; N > 0 trains to convergence: the learning rate drops
            (x0.3) after N // 2 epochs without a better validation accuracy, training stops after N,
            and the best epoch's weights are restored (needs the validation split; for float
            training: masks follow their own schedule).
        limit: use at most this many training examples (0 = all).
        min_epochs: with ``patience``, train at least this many epochs, at the configured learning rate,
            before early stopping may end it or a plateau lower the rate (and restore the best of the epochs
            from then on): a model whose validation accuracy is noisy early (MobileNet's BatchNorm) is not
            stopped, or slowed, before it has trained.
    """

    epochs: int = 2
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    patience: int = 0
    limit: int = 0
    min_epochs: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size", "seed", "limit", "patience", "min_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "batch_size" else 0):
                raise ConfigError(f"{name} must be a whole number >= {1 if name == 'batch_size' else 0}. Received: {name}={value!r}")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) \
                or not 0 < float(self.learning_rate) <= 10:
            raise ConfigError(f"learning_rate must be a number in (0, 10]. Received: learning_rate={self.learning_rate!r}")
        if self.batch_size > MAX_BATCH_SIZE or self.epochs > MAX_EPOCHS:
            raise ConfigError(f"batch_size must be at most {MAX_BATCH_SIZE} and epochs at most {MAX_EPOCHS}. "
                              f"Received: batch_size={self.batch_size!r}, epochs={self.epochs!r}")
        if self.min_epochs > self.epochs:
            raise ConfigError(f"min_epochs cannot exceed epochs. Received: min_epochs={self.min_epochs!r}, "
                              f"epochs={self.epochs!r}")

    def rule(self) -> str:
        """How long this trains, in words (reported with every baseline)."""
        if self.patience:
            return (f"early stopping on validation accuracy: patience {self.patience}, "
                    + (f"at least {self.min_epochs}, " if self.min_epochs else "")
                    + f"at most {self.epochs} epochs, learning rate x0.3 after {max(1, self.patience // 2)} epochs "
                    + "without improvement"
                    + (f" (both counted from epoch {self.min_epochs + 1})" if self.min_epochs else "")
                    + ", best epoch restored")
        return f"fixed {self.epochs} epochs"
