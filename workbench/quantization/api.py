"""quantize_model(): turn a (pruned) Keras model into its quantization-aware (QAT) form."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from workbench.config import QuantConfig
from workbench.errors import ModelError
from workbench.nn.forward import layer_args, layer_kind
from workbench.nn.graph import edges, sole_consumer
from workbench.nn.separable import SEPARABLE, expand_config, halves, split_separable
from workbench.pruning.masks import sparsity_of
from workbench.pruning.wrapper import PruneWrapper
from workbench.quantization.bn_fold import batchnorm_params, fold_batchnorm
from workbench.quantization.layers import Absorbed, QuantOutput, QuantWeightLayer

# Layers that carry no weights to quantize and need no change: the converter quantizes them
# with ranges calibrated on representative data.
PASS_THROUGH = ("InputLayer", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                "Flatten", "Reshape", "Dropout", "ZeroPadding2D", "Add", "Concatenate", "Softmax", "Resizing",
                "Rescaling", "Identity", "Absorbed", "QuantOutput", "ReLU", "Activation", "BatchNormalization")

# Layers without weights whose outputs the int8 model stores requantized (a scale of their own): QAT
# fake-quantizes them too (QuantOutput), as it does every weight layer's output. A ReLU no weight layer
# absorbed is one as well. Pooling, Flatten, Reshape and the like keep their input's scale in TFLite.
REQUANTIZED = ("Add", "GlobalAveragePooling2D")


@dataclasses.dataclass
class QuantReport:
    """What quantize_model did to each layer."""

    weight_bits: int
    activation_bits: int
    layers: list = dataclasses.field(default_factory=list)  # dicts: name, kind, weight_bits, per_channel, ...
    folded: list = dataclasses.field(default_factory=list)  # (bn layer, into layer)
    fused: list = dataclasses.field(default_factory=list)  # (activation layer, into layer)
    passed: list = dataclasses.field(default_factory=list)  # layers left to the converter's calibration
    calibrated: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _source(layer):
    """(weight layer, mask) of a plain or pruned weight layer."""
    if isinstance(layer, PruneWrapper):
        return layer.layer, layer.get_mask()
    return layer, np.ones(tuple(layer.kernel.shape), dtype=np.float32)


def _is_fusable_activation(layer) -> str | None:
    name = type(layer).__name__
    if name == "ReLU":
        cfg = layer.get_config()
        if cfg.get("negative_slope", 0) == 0 and cfg.get("threshold", 0) == 0:
            if cfg.get("max_value") is None:
                return "relu"
            if float(cfg["max_value"]) == 6.0:
                return "relu6"
    if name == "Activation":
        act = getattr(layer.activation, "__name__", "")
        if act in ("relu", "relu6"):
            return act
    return None


def requantized(layer) -> bool:
    """Whether QAT fake-quantizes this weightless layer's output (see REQUANTIZED)."""
    return type(layer).__name__ in REQUANTIZED or bool(_is_fusable_activation(layer))


def check_supported(model: keras.Model) -> None:
    """Raise ModelError naming every layer the workbench cannot compress (SeparableConv2D is split in two)."""
    layers = [part for layer in model.layers
              for part in (halves(layer) if type(layer).__name__ == SEPARABLE else (layer,))]
    bad = [f"{layer.name} ({type(layer).__name__})" for layer in layers
           if not (isinstance(layer, (PruneWrapper, QuantWeightLayer)) or layer_kind(layer)
                   or type(layer).__name__ in PASS_THROUGH)]
    if bad:
        raise ModelError(f"Unsupported layers: {', '.join(bad)}. Supported: Conv2D, DepthwiseConv2D, "
                         f"SeparableConv2D, Dense and "
                         f"{', '.join(PASS_THROUGH)}.")
    for layer in layers:
        inner = layer.layer if isinstance(layer, PruneWrapper) else layer
        if layer_kind(inner):
            layer_args(inner)  # raises on unsupported activation / data format / groups


def _plan(model: keras.Model, config: QuantConfig):
    """Decide, per weight layer, the BN to fold and the activation to fuse."""
    _, consumers = edges(model)
    by_name = {layer.name: layer for layer in model.layers}
    plan, absorbed = {}, {}
    for layer in model.layers:
        if not (isinstance(layer, PruneWrapper) or layer_kind(layer)):
            continue
        inner, mask = _source(layer)
        args = layer_args(inner)
        entry = {"args": args, "activation": args["activation"], "bn": None, "act_layer": None,
                 "inner": inner, "mask": mask}
        tail = layer.name
        nxt = sole_consumer(consumers, tail)
        if (config.fold_batchnorm and args["activation"] == "linear" and nxt
                and type(by_name[nxt]).__name__ == "BatchNormalization"):
            entry["bn"] = by_name[nxt]
            absorbed[nxt] = layer.name
            tail = nxt
            nxt = sole_consumer(consumers, tail)
        if entry["activation"] == "linear" and nxt and _is_fusable_activation(by_name[nxt]):
            entry["activation"] = _is_fusable_activation(by_name[nxt])
            entry["act_layer"] = nxt
            absorbed[nxt] = layer.name
        plan[layer.name] = entry
    return plan, absorbed


def quantize_model(model: keras.Model, config: QuantConfig | None = None, calibration_data=None,
                   calibration_batches: int = 8, batch_size: int = 128) -> tuple[keras.Model, QuantReport]:
    """Return the QAT form of ``model`` and a QuantReport.

    Weight layers become QuantWeightLayer (pruning masks kept, BatchNorm folded, a following
    ReLU/ReLU6 fused). ``calibration_data`` (images) initialises the activation ranges; without
    it the first training batch does.
    """
    config = config or QuantConfig()
    if any(isinstance(layer, QuantWeightLayer) for layer in model.layers):
        raise ModelError(f"Model {model.name!r} is already quantization-aware; quantize the float model instead.")
    model, split = split_separable(model)  # SeparableConv2D: a depthwise and a pointwise layer, each quantized
    config = expand_config(config, split)
    check_supported(model)
    for field in ("layer_weight_bits", "layer_clusters"):
        unknown = set(getattr(config, field)) - {layer.name for layer in model.layers}
        if unknown:
            raise ModelError(f"{field} names layers the model does not have: {sorted(unknown)}. "
                             f"Its layers: {[layer.name for layer in model.layers]}.")
    plan, absorbed = _plan(model, config)
    report = QuantReport(config.weight_bits, config.activation_bits)

    def clone(layer):
        if layer.name in plan:
            entry = plan[layer.name]
            return QuantWeightLayer(entry["args"], tuple(entry["inner"].kernel.shape), entry["activation"],
                                    config.weight_bits_for(layer.name), config.activation_bits, config.ema_decay,
                                    clusters=config.clusters_for(layer.name), name=layer.name)
        if layer.name in absorbed:
            return Absorbed(absorbed[layer.name], name=layer.name)
        copy = layer.__class__.from_config(layer.get_config())
        if requantized(layer):
            return QuantOutput(copy, config.activation_bits, config.ema_decay, name=layer.name)
        return copy

    qat = keras.models.clone_model(model, clone_function=clone)
    for src, dst in zip(model.layers, qat.layers):
        if src.name in plan:
            entry = plan[src.name]
            inner, args = entry["inner"], entry["args"]
            kernel = inner.kernel.numpy() * entry["mask"]
            bias = inner.bias.numpy() if args["use_bias"] else None
            if entry["bn"] is not None:
                kernel, bias = fold_batchnorm(kernel, bias, kind=args["kind"], **batchnorm_params(entry["bn"]))
                report.folded.append((entry["bn"].name, src.name))
            if bias is None:
                bias = np.zeros(dst.bias.shape, dtype=np.float32)
            dst.share_weights(kernel, entry["mask"])
            dst.bias.assign(bias)
            if entry["act_layer"]:
                report.fused.append((entry["act_layer"], src.name))
            report.layers.append({"name": src.name, "kind": args["kind"], "weight_bits": dst.weight_bits,
                                  "clusters": dst.clusters,
                                  "per_channel": args["kind"] != "dense", "activation": dst.activation,
                                  "sparsity": sparsity_of(entry["mask"])})
        elif src.name not in absorbed:
            if src.get_weights():
                dst.set_weights(src.get_weights())
            if type(src).__name__ != "InputLayer":
                report.passed.append(src.name)
    if calibration_data is not None:
        calibrate(qat, calibration_data, calibration_batches, batch_size)
        report.calibrated = True
    return qat, report


def calibrate(qat: keras.Model, images: np.ndarray, batches: int = 8, batch_size: int = 128) -> None:
    """Initialise/refresh activation ranges by running ``batches`` batches in training mode."""
    images = np.asarray(images, dtype=np.float32)
    for start in range(0, min(len(images), batches * batch_size), batch_size):
        qat(images[start:start + batch_size], training=True)
