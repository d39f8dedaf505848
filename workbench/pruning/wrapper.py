"""PruneWrapper: a Keras layer that holds a weight layer and its mask as a non-trainable variable.

The forward pass uses ``kernel * mask``, so pruned weights contribute exactly zero and get a
zero gradient; the mask is saved and exported with the model (as in tfmot's pruning_wrapper).
"""

from __future__ import annotations

import keras
import numpy as np

from workbench.errors import ModelError
from workbench.nn.forward import apply_activation, layer_args, layer_kind, linear_forward, output_shape


@keras.saving.register_keras_serializable(package="workbench")
class PruneWrapper(keras.layers.Wrapper):
    """Wrap a Conv2D, DepthwiseConv2D or Dense layer with a binary mask on its kernel."""

    def __init__(self, layer, **kwargs):
        if layer_kind(layer) is None:
            raise ModelError(f"PruneWrapper takes Conv2D, DepthwiseConv2D or Dense. "
                             f"Received: layer {getattr(layer, 'name', layer)!r} of type {type(layer).__name__}")
        kwargs.setdefault("name", layer.name)
        super().__init__(layer, **kwargs)
        self._args = layer_args(layer)

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.mask = self.add_weight(name="mask", shape=tuple(self.layer.kernel.shape), initializer="ones",
                                    trainable=False, dtype="float32")
        self.built = True

    @property
    def kind(self) -> str:
        return self._args["kind"]

    @property
    def kernel(self):
        return self.layer.kernel

    def masked_kernel(self):
        return self.layer.kernel * keras.ops.cast(self.mask, self.layer.kernel.dtype)

    def call(self, inputs):
        bias = self.layer.bias if self._args["use_bias"] else None
        y = linear_forward(inputs, self.masked_kernel(), bias, self._args)
        return apply_activation(y, self._args["activation"])

    def compute_output_shape(self, input_shape):
        return output_shape(input_shape, tuple(self.layer.kernel.shape), self._args)

    def set_mask(self, mask: np.ndarray) -> None:
        """Assign a new mask. The stored kernel keeps its values, so lowering sparsity revives them;
        every forward pass, QAT and export use ``kernel * mask``, where pruned weights are exactly 0."""
        mask = np.asarray(mask, dtype=np.float32)
        if mask.shape != tuple(self.mask.shape):
            raise ModelError(f"Mask for {self.name!r} must have shape {tuple(self.mask.shape)}. Received: {mask.shape}")
        if not np.all((mask == 0) | (mask == 1)):
            raise ModelError(f"Mask for {self.name!r} must hold only 0 and 1.")
        self.mask.assign(mask)

    def get_mask(self) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.mask)

    def effective_kernel(self) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.masked_kernel())


def wrapped_layers(model) -> list[PruneWrapper]:
    """The PruneWrappers of a model, in layer order."""
    return [layer for layer in model.layers if isinstance(layer, PruneWrapper)]
