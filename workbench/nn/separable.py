"""SeparableConv2D as what it computes: a DepthwiseConv2D followed by a 1×1 Conv2D.

Keras' SeparableConv2D holds two kernels in one layer. Split into two plain layers with the same weights, the
model computes the same function, and every part of the workbench that knows depthwise and pointwise
convolutions (masks, per-channel fake quantization, BatchNorm folding, int8 export, structured pruning)
works on it unchanged; the TFLite converter emits the same two operators for either form.
"""

from __future__ import annotations

import keras

from workbench.nn.graph import functional_view

SEPARABLE = "SeparableConv2D"


def has_separable(model: keras.Model) -> bool:
    return any(type(layer).__name__ == SEPARABLE for layer in model.layers)


def split_parts(name: str) -> tuple[str, str]:
    """The names the two halves of separable layer ``name`` get."""
    return f"{name}_depthwise", f"{name}_pointwise"


def halves(layer) -> tuple[keras.layers.Layer, keras.layers.Layer]:
    """A new (unbuilt) DepthwiseConv2D and 1×1 Conv2D that compute separable ``layer`` together."""
    depthwise_name, pointwise_name = split_parts(layer.name)
    depthwise = keras.layers.DepthwiseConv2D(
        kernel_size=layer.kernel_size, strides=layer.strides, padding=layer.padding,
        depth_multiplier=layer.depth_multiplier, data_format=layer.data_format, dilation_rate=layer.dilation_rate,
        use_bias=False, depthwise_regularizer=layer.depthwise_regularizer,
        depthwise_constraint=layer.depthwise_constraint, name=depthwise_name, dtype=layer.dtype_policy)
    pointwise = keras.layers.Conv2D(
        filters=layer.filters, kernel_size=1, data_format=layer.data_format, activation=layer.activation,
        use_bias=layer.use_bias, kernel_regularizer=layer.pointwise_regularizer,
        bias_regularizer=layer.bias_regularizer, activity_regularizer=layer.activity_regularizer,
        kernel_constraint=layer.pointwise_constraint, bias_constraint=layer.bias_constraint, name=pointwise_name,
        dtype=layer.dtype_policy)
    return depthwise, pointwise


def split_separable(model: keras.Model) -> tuple[keras.Model, list[str]]:
    """(the model with every SeparableConv2D split in two, the names of the layers split).

    The model itself is returned when it has none. Otherwise a new functional model with copies of every
    layer and its weights: the input model is left as it was.
    """
    if not has_separable(model):
        return model, []
    graph = functional_view(model)
    originals: dict[int, keras.layers.Layer] = {}
    split: list[str] = []

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        originals[id(copy)] = layer
        return copy

    def call(layer, *args, **kwargs):
        source = originals[id(layer)]
        if type(source).__name__ != SEPARABLE:
            outputs = layer(*args, **kwargs)
            layer.set_weights(source.get_weights())
            return outputs
        depthwise, pointwise = halves(source)
        outputs = pointwise(depthwise(*args, **kwargs))
        depthwise.set_weights([source.depthwise_kernel.numpy()])
        pointwise.set_weights([source.pointwise_kernel.numpy()]
                              + ([source.bias.numpy()] if source.use_bias else []))
        split.append(source.name)
        return outputs

    rebuilt = keras.models.clone_model(graph, clone_function=clone, call_function=call)
    return keras.Model(rebuilt.inputs, rebuilt.outputs, name=model.name), split


def expand_names(names, split: list[str]):
    """Settings that name a split layer apply to both its halves (a dict by layer, or a list of layer names)."""
    if not split or not names:
        return names
    if isinstance(names, dict):
        out = {}
        for key, value in names.items():
            out.update({half: value for half in split_parts(key)} if key in split else {key: value})
        return out
    return [half for key in names for half in (split_parts(key) if key in split else (key,))]


SPLIT_SETTINGS = ("layer_sparsity", "layer_threshold", "exclude", "layer_weight_bits", "layer_clusters")


def expand_config(config, split: list[str]):
    """A PruneConfig or QuantConfig whose per-layer settings naming a split layer now name both its halves."""
    if not split:
        return config
    settings = config.get_config()
    return type(config).from_config({**settings, **{key: expand_names(settings[key], split)
                                                    for key in SPLIT_SETTINGS if key in settings}})
