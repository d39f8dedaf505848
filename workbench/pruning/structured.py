"""Structured (filter) pruning by filter L1 norm (Li et al., 2017) that physically removes channels.

Removing filter j of a Conv2D (or neuron j of a Dense layer) also removes channel j wherever it
flows: BatchNormalization parameters, a DepthwiseConv2D's channel j (its kernel slice and bias: a
MobileNet pointwise conv -> BN -> ReLU -> depthwise -> BN -> ReLU -> next pointwise chain), the input
channels of the next Conv2D, or the rows of the Dense layer behind it (through a Flatten or
global pooling). The result is a smaller dense model with fewer parameters and MACs.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from workbench.config import check_sparsity
from workbench.errors import ConfigError, ModelError
from workbench.nn.graph import edges, sole_consumer
from workbench.pruning.masks import filters_to_keep
from workbench.pruning.wrapper import PruneWrapper

CHANNEL_PRESERVING = ("BatchNormalization", "ReLU", "Activation", "MaxPooling2D", "AveragePooling2D", "Dropout",
                      "ZeroPadding2D")


@dataclasses.dataclass
class FilterPruneReport:
    layers: list = dataclasses.field(default_factory=list)  # name, filters_before, filters_after
    skipped: list = dataclasses.field(default_factory=list)  # (name, reason)
    params_before: int = 0
    params_after: int = 0
    macs_before: int = 0
    macs_after: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass through the conv and dense layers."""
    total = 0
    for layer in model.layers:
        name = type(layer).__name__
        if name in ("Conv2D", "DepthwiseConv2D"):
            out = layer.output.shape
            total += int(np.prod(out[1:3])) * int(np.prod(layer.kernel.shape[:-1])) * (
                layer.kernel.shape[-1] if name == "Conv2D" else layer.kernel.shape[-1] * layer.kernel.shape[-2]
            ) // (1 if name == "Conv2D" else layer.kernel.shape[-2])
        elif name == "Dense":
            total += int(np.prod(layer.kernel.shape))
    return total


def _trace(model, start, consumers, by_name):
    """Follow channel-preserving layers from ``start``; return (passed layer names, consumer, flatten) or a reason."""
    passed, flatten, name = [], None, start
    while True:
        nxt = sole_consumer(consumers, name)
        if nxt is None:
            n = len(consumers.get(name, []))
            return None, ("feeds the model output" if n == 0 else f"its output feeds {n} layers")
        kind = type(by_name[nxt]).__name__
        if kind in CHANNEL_PRESERVING:
            passed.append(nxt)
            name = nxt
            continue
        if kind == "DepthwiseConv2D":  # per-channel: channel k in, channel k out (depth multiplier 1)
            if by_name[nxt].depth_multiplier != 1:
                return None, f"it feeds DepthwiseConv2D {nxt!r} with depth_multiplier {by_name[nxt].depth_multiplier}"
            passed.append(nxt)
            name = nxt
            continue
        if kind in ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            if flatten is not None:
                return None, "two flattening layers in a row"
            flatten = nxt
            name = nxt
            continue
        if kind == "Conv2D" and (flatten is None or getattr(by_name[flatten], "keepdims", False)):
            return (passed, nxt, None), None  # (a global pooling that keeps its 1x1 map feeds a 1x1 conv alike)
        if kind == "Dense":
            if flatten is None and len(by_name[start].output.shape) != 2:
                return None, f"it feeds Dense {nxt!r} without a Flatten or global pooling"
            return (passed, nxt, flatten), None
        return None, f"it feeds {kind} {nxt!r}, which filter pruning does not follow"


def prune_filters(model: keras.Model, sparsity: float = 0.5, layer_sparsity: dict | None = None,
                  exclude=()) -> tuple[keras.Model, FilterPruneReport]:
    """Remove the ``sparsity`` fraction of filters with the lowest L1 norm from each eligible Conv2D, and the
    fractions ``layer_sparsity`` names of Conv2D filters or Dense neurons.

    Args:
        model: a plain (not PruneWrapper) Sequential or functional model.
        sparsity: default fraction of filters to remove per Conv2D (Dense layers: only when named).
        layer_sparsity: per-layer fractions by name (overrides ``sparsity``); Dense names remove neurons.
        exclude: layer names to leave alone.

    Returns:
        (a new, smaller model; a FilterPruneReport).
    """
    if any(isinstance(layer, PruneWrapper) for layer in model.layers):
        raise ModelError("prune_filters takes a plain model; call strip_pruning() on a pruned model first.")
    check_sparsity(sparsity)
    layer_sparsity = {k: check_sparsity(v, f"layer_sparsity[{k!r}]") for k, v in (layer_sparsity or {}).items()}
    by_name = {layer.name: layer for layer in model.layers}
    unknown = (set(layer_sparsity) | set(exclude)) - set(by_name)
    if unknown:
        raise ConfigError(f"No layer named {sorted(unknown)} in model {model.name!r}.")
    _, consumers = edges(model)
    weights = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers}
    new_filters: dict[str, int] = {}
    report = FilterPruneReport(params_before=int(model.count_params()), macs_before=count_macs(model))
    not_prunable = sorted(name for name in layer_sparsity if type(by_name[name]).__name__ not in ("Conv2D", "Dense"))
    if not_prunable:
        raise ConfigError(f"layer_sparsity names {not_prunable}: structured pruning removes Conv2D filters and "
                          "Dense neurons only.")
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Dense") or layer.name in exclude:
            continue
        s = layer_sparsity.get(layer.name, sparsity if kind == "Conv2D" else 0.0)
        if s == 0:
            continue
        traced, reason = _trace(model, layer.name, consumers, by_name)
        if traced is None:
            report.skipped.append((layer.name, f"not pruned: {reason}"))
            continue
        passed, consumer, flatten = traced
        keep = filters_to_keep(layer.get_weights()[0], s)  # ranked on the original filters (Li et al.)
        n = weights[layer.name][0].shape[-1]
        weights[layer.name] = [w[..., keep] for w in weights[layer.name]]
        for name in passed:
            if type(by_name[name]).__name__ == "DepthwiseConv2D":
                depthwise = weights[name]
                weights[name] = [depthwise[0][:, :, keep, :]] + [w[keep] for w in depthwise[1:]]
            else:
                weights[name] = [w[keep] if w.ndim == 1 else w for w in weights[name]]
        kernel = weights[consumer][0]
        if type(by_name[consumer]).__name__ == "Conv2D":
            kernel = kernel[:, :, keep, :]
        elif flatten is not None and type(by_name[flatten]).__name__ == "Flatten":
            h, w, c = by_name[flatten].input.shape[1:]
            rows = (np.arange(h * w)[:, None] * c + keep[None, :]).ravel()
            kernel = kernel[rows, :]
        else:
            kernel = kernel[keep, :]
        weights[consumer] = [kernel] + weights[consumer][1:]
        new_filters[layer.name] = len(keep)
        report.layers.append({"name": layer.name, "kind": kind, "filters_before": int(n),
                              "filters_after": int(len(keep)), "kept": [int(k) for k in keep],
                              "through": list(passed), "into": consumer,
                              "flatten": by_name[flatten].__class__.__name__ if flatten else None})

    def clone(layer):
        config = layer.get_config()
        if layer.name in new_filters:
            config["units" if type(layer).__name__ == "Dense" else "filters"] = new_filters[layer.name]
        return layer.__class__.from_config(config)

    smaller = keras.models.clone_model(model, clone_function=clone)
    for layer in smaller.layers:
        if weights.get(layer.name):
            layer.set_weights(weights[layer.name])
    report.params_after = int(smaller.count_params())
    report.macs_after = count_macs(smaller)
    return smaller, report
