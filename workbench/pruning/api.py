"""Entry points for unstructured pruning: prune_model(), strip_pruning(), set_sparsity()."""

from __future__ import annotations

import keras
import numpy as np

from workbench.config import PruneConfig, check_sparsity
from workbench.errors import ConfigError, ModelError
from workbench.nn.forward import layer_kind
from workbench.nn.separable import expand_config, split_parts, split_separable
from workbench.pruning import criteria, masks
from workbench.pruning.report import PruneReport, layer_record
from workbench.pruning.wrapper import PruneWrapper, wrapped_layers


UNSUPPORTED = ("Lambda", "TFOpLambda")  # code inside the model: never cloned or run by the workbench


def wrap_model(model: keras.Model, exclude=()) -> keras.Model:
    """A copy of ``model`` whose Conv2D/DepthwiseConv2D/Dense layers are PruneWrappers (masks all ones)."""
    if any(isinstance(layer, PruneWrapper) for layer in model.layers):
        return model
    exclude = set(exclude)
    unknown = exclude - {layer.name for layer in model.layers}
    if unknown:
        raise ConfigError(f"exclude names layers the model does not have: {sorted(unknown)}.")

    def clone(layer):
        if layer_kind(layer) is not None and layer.name not in exclude:
            inner = layer.__class__.from_config(layer.get_config())
            return PruneWrapper(inner, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    wrapped = keras.models.clone_model(model, clone_function=clone)
    for src, dst in zip(model.layers, wrapped.layers):
        weights = src.get_weights()
        if isinstance(dst, PruneWrapper):
            dst.layer.set_weights(weights)
        elif weights:
            dst.set_weights(weights)
    if not wrapped_layers(wrapped):
        raise ModelError(f"Model {model.name!r} has no Conv2D, DepthwiseConv2D or Dense layer to prune.")
    return wrapped


def layer_scores(model: keras.Model, criterion: str, data=None, batch_size: int = 128,
                 batches: int = 8) -> dict[str, np.ndarray]:
    """Score every kernel weight of the wrapped layers by ``criterion``."""
    layers = wrapped_layers(model)
    if criterion == "magnitude":
        return {layer.name: criteria.magnitude(layer.effective_kernel()) for layer in layers}
    if criterion == "taylor":
        if data is None:
            raise ConfigError("criterion='taylor' needs data (x, y) to accumulate gradients. Received: data=None")
        x, y = data
        return criteria.accumulate_taylor(model, layers, x, y, batch_size=batch_size, batches=batches)
    raise ConfigError(f"Unknown criterion. Received: criterion={criterion!r}; use 'magnitude' or 'taylor'.")


def compute_masks(scores: dict[str, np.ndarray], config: PruneConfig, sparsity: float | None = None,
                  fraction: float = 1.0) -> dict[str, np.ndarray]:
    """Masks for ``scores`` under ``config``'s target.

    ``sparsity`` overrides the global sparsity; ``fraction`` in [0, 1] scales every per-layer
    target (used by the polynomial schedule).
    """
    if config.target == "global":
        s = config.sparsity if sparsity is None else sparsity
        return masks.global_masks(scores, s)
    if config.target == "per_layer":
        base = config.sparsity if sparsity is None else sparsity
        out = {}
        for name, sc in scores.items():
            target = config.layer_sparsity.get(name, base)
            out[name] = masks.mask_for_sparsity(sc, target * fraction)
        return out
    return {name: (masks.mask_for_threshold(sc, config.layer_threshold[name])
                   if name in config.layer_threshold else np.ones_like(sc, dtype=np.float32))
            for name, sc in scores.items()}


def apply_masks(model: keras.Model, new_masks: dict[str, np.ndarray]) -> None:
    """Assign masks by layer name (and zero the pruned kernel weights)."""
    by_name = {layer.name: layer for layer in wrapped_layers(model)}
    unknown = set(new_masks) - set(by_name)
    if unknown:
        raise ModelError(f"No prunable layer named {sorted(unknown)}; the model has {sorted(by_name)}.")
    for layer in by_name.values():
        if layer.name in new_masks and np.shape(new_masks[layer.name]) != tuple(layer.mask.shape):
            raise ModelError(f"Mask for {layer.name!r} must have shape {tuple(layer.mask.shape)}. "
                             f"Received: {np.shape(new_masks[layer.name])}")
    for name, mask in new_masks.items():
        by_name[name].set_mask(mask)


def get_masks(model: keras.Model) -> dict[str, np.ndarray]:
    return {layer.name: layer.get_mask() for layer in wrapped_layers(model)}


def pruning_report(model: keras.Model, config: PruneConfig, scores: dict[str, np.ndarray] | None = None,
                   skipped=()) -> PruneReport:
    """Describe the current masks of a wrapped model."""
    report = PruneReport(config.criterion, config.target, config.schedule, skipped=list(skipped))
    for layer in wrapped_layers(model):
        mask = layer.get_mask()
        sc = scores[layer.name] if scores and layer.name in scores else criteria.magnitude(layer.kernel.numpy())
        report.layers.append(layer_record(layer.name, layer.kind, mask, sc))
    report.model_params, report.model_zeros = count_weights(model)
    return report


def count_weights(model: keras.Model) -> tuple[int, int]:
    """(every weight of the model, how many are zero); a pruned kernel counts its effective (masked) values."""
    params = zeros = 0
    for layer in model.layers:
        masked = {}
        if isinstance(layer, PruneWrapper):
            masked[id(layer.kernel)] = layer.kernel.numpy() * layer.get_mask()
        for variable in layer.weights:
            if "mask" in variable.path.rsplit("/", 1)[-1]:
                continue
            value = masked.get(id(variable))
            value = variable.numpy() if value is None else value
            params += int(value.size)
            zeros += int(np.count_nonzero(value == 0))
    return params, zeros


def validate_targets(model: keras.Model, config: PruneConfig) -> None:
    names = {layer.name for layer in wrapped_layers(model)}
    for field in ("layer_sparsity", "layer_threshold"):
        unknown = set(getattr(config, field)) - names
        if unknown:
            raise ConfigError(f"{field} names layers that are not prunable here: {sorted(unknown)}; "
                              f"prunable layers are {sorted(names)}.")
    if config.target == "threshold" and config.schedule != "one_shot":
        raise ConfigError("target='threshold' works with schedule='one_shot' only; a polynomial schedule needs "
                          f"a sparsity target. Received: schedule={config.schedule!r}")


def prune_model(model: keras.Model, config: PruneConfig | None = None, data=None,
                batch_size: int = 128) -> tuple[keras.Model, PruneReport]:
    """Wrap ``model`` for pruning and, for a one-shot schedule, prune it now.

    Args:
        model: a built Keras model (it is not modified; a pruned copy is returned).
        config: PruneConfig; default is 90% global magnitude pruning, one shot.
        data: (x, y) training arrays, needed by the Taylor criterion.

    Returns:
        (pruned model with PruneWrapper layers, PruneReport). With schedule="polynomial" the
        masks start empty; fine-tuning with ``workbench.train.fine_tune`` raises the sparsity.
    """
    config = config or PruneConfig()
    if not isinstance(model, keras.Model):
        raise ModelError(f"prune_model takes a built keras.Model. Received: {type(model).__name__}")
    unsupported = [f"{layer.name} ({type(layer).__name__})" for layer in model.layers
                   if type(layer).__name__ in UNSUPPORTED]
    if unsupported:
        raise ModelError(f"Cannot prune a model with {', '.join(unsupported)}: layers that run arbitrary code "
                         "cannot be copied safely. Rebuild the model from standard layers.")
    model, split = split_separable(model)  # SeparableConv2D: a depthwise and a pointwise kernel, pruned apart
    config = expand_config(config, split)
    skipped = [(layer.name, "excluded by config") for layer in model.layers if layer.name in config.exclude]
    skipped += [(layer.name, f"{type(layer).__name__} is not prunable here "
                             "(Conv2D, DepthwiseConv2D, SeparableConv2D and Dense are)")
                for layer in model.layers if layer.name not in config.exclude and layer.weights
                and layer_kind(layer) is None and not isinstance(layer, PruneWrapper)
                and type(layer).__name__ != "BatchNormalization"]
    if any(isinstance(layer, PruneWrapper) for layer in model.layers):
        pruned = keras.models.clone_model(model)
        pruned.set_weights(model.get_weights())
    else:
        pruned = wrap_model(model, exclude=config.exclude)
    validate_targets(pruned, config)
    if config.schedule == "polynomial":
        report = pruning_report(pruned, config, skipped=skipped)
    else:
        scores = layer_scores(pruned, config.criterion, data, batch_size, config.taylor_batches)
        apply_masks(pruned, compute_masks(scores, config))
        report = pruning_report(pruned, config, scores, skipped)
    report.split = {name: list(split_parts(name)) for name in split}
    return pruned, report


def set_sparsity(model: keras.Model, layer_name: str, sparsity: float, criterion: str = "magnitude",
                 scores: np.ndarray | None = None) -> np.ndarray:
    """Re-prune one wrapped layer to ``sparsity`` from its current effective weights and return the mask."""
    check_sparsity(sparsity)
    by_name = {layer.name: layer for layer in wrapped_layers(model)}
    if layer_name not in by_name:
        raise ModelError(f"No prunable layer named {layer_name!r}; the model has {sorted(by_name)}.")
    layer = by_name[layer_name]
    sc = scores if scores is not None else criteria.magnitude(layer.kernel.numpy())
    mask = masks.mask_for_sparsity(sc, sparsity)
    layer.set_mask(mask)
    return mask


def strip_pruning(model: keras.Model) -> keras.Model:
    """A plain Keras model with every PruneWrapper replaced by its layer, holding ``kernel * mask``."""
    def clone(layer):
        inner = layer.layer if isinstance(layer, PruneWrapper) else layer
        return inner.__class__.from_config(inner.get_config())

    plain = keras.models.clone_model(model, clone_function=clone)
    for src, dst in zip(model.layers, plain.layers):
        if isinstance(src, PruneWrapper):
            weights = src.layer.get_weights()
            weights[0] = src.effective_kernel()
            dst.set_weights(weights)
        elif src.get_weights():
            dst.set_weights(src.get_weights())
    return plain
