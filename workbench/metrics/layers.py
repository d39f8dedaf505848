"""One iterator over a model's weight layers, plain, pruned (PruneWrapper) or QAT (QuantWeightLayer).

Size estimates, layer tables and views all walk weight layers the same way; this is that walk.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from workbench.nn.forward import layer_kind
from workbench.pruning.wrapper import PruneWrapper
from workbench.quantization.layers import QuantWeightLayer


@dataclasses.dataclass
class WeightLayer:
    """A weight layer's name, kind ("conv", "depthwise", "dense"), effective kernel, bias, mask and weight bits."""

    name: str
    kind: str
    kernel: np.ndarray  # kernel * mask for a pruned layer; the float (shared) kernel for a QAT layer
    bias: np.ndarray  # empty when the layer has none
    mask: np.ndarray  # ones when the layer is not pruned
    bits: int  # 32 for a float layer


def weight_layers(model) -> Iterator[WeightLayer]:
    """Every Conv2D / DepthwiseConv2D / Dense of ``model`` in layer order, with its kind, kernel and mask."""
    for layer in model.layers:
        if isinstance(layer, PruneWrapper):
            kernel, kind, bits, mask = layer.effective_kernel(), layer.kind, 32, layer.get_mask()
            bias = layer.layer.bias.numpy() if layer.layer.use_bias else np.zeros(0, np.float32)
        elif isinstance(layer, QuantWeightLayer):
            kernel, kind, bits = layer.float_kernel().numpy(), layer.kind, layer.weight_bits
            mask, bias = layer.mask.numpy(), layer.bias.numpy()
        elif layer_kind(layer):
            kernel, kind, bits = layer.kernel.numpy(), layer_kind(layer), 32
            mask = np.ones(kernel.shape, np.float32)
            bias = layer.bias.numpy() if layer.use_bias else np.zeros(0, np.float32)
        else:
            continue
        yield WeightLayer(layer.name, kind, kernel, bias, mask, bits)


def other_params(model) -> int:
    """Parameters outside the weight layers (BatchNorm, ...)."""
    kinds = (PruneWrapper, QuantWeightLayer)
    return sum(int(np.prod(w.shape)) for layer in model.layers
               if not isinstance(layer, kinds) and not layer_kind(layer) for w in layer.weights)
