"""Forward passes of the weight layers we compress, given an explicit (masked or quantized) kernel."""

from __future__ import annotations

from keras import ops

from workbench.errors import ModelError

KINDS = {"Conv2D": "conv", "DepthwiseConv2D": "depthwise", "Dense": "dense"}
ACTIVATIONS = ("linear", "relu", "relu6", "softmax")


def layer_kind(layer) -> str | None:
    """'conv', 'depthwise' or 'dense' for a supported Keras weight layer, else None."""
    return KINDS.get(type(layer).__name__)


def layer_args(layer) -> dict:
    """The settings of a weight layer that its forward pass needs, as plain values."""
    kind = layer_kind(layer)
    if kind is None:
        raise ModelError(f"Layer {layer.name!r} of type {type(layer).__name__} has no prunable kernel; "
                         f"supported types are {sorted(KINDS)}.")
    args = {"kind": kind, "use_bias": bool(layer.use_bias), "activation": activation_name(layer.activation, layer)}
    if kind != "dense":
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ModelError(f"Layer {layer.name!r} uses data_format={layer.data_format!r}; only channels_last is supported.")
        if getattr(layer, "groups", 1) != 1:
            raise ModelError(f"Layer {layer.name!r} uses groups={layer.groups}; grouped convolutions are not supported.")
        args.update(strides=tuple(layer.strides), padding=layer.padding, dilation_rate=tuple(layer.dilation_rate))
    return args


def activation_name(fn, layer=None) -> str:
    """Name of a Keras activation function among ACTIVATIONS, or raise ModelError."""
    name = getattr(fn, "__name__", str(fn))
    if name not in ACTIVATIONS:
        where = f" in layer {layer.name!r}" if layer is not None else ""
        raise ModelError(f"Activation {name!r}{where} is not supported; use one of {list(ACTIVATIONS)}.")
    return name


def apply_activation(x, name: str):
    if name == "linear":
        return x
    if name == "relu":
        return ops.relu(x)
    if name == "relu6":
        return ops.relu6(x)
    if name == "softmax":
        return ops.softmax(x, axis=-1)
    raise ModelError(f"Unknown activation {name!r}; use one of {list(ACTIVATIONS)}.")


def linear_forward(x, kernel, bias, args: dict):
    """Pre-activation output of a conv / depthwise / dense layer for ``kernel`` and ``bias``."""
    kind = args["kind"]
    if kind == "conv":
        y = ops.conv(x, kernel, strides=args["strides"], padding=args["padding"],
                     dilation_rate=args["dilation_rate"], data_format="channels_last")
    elif kind == "depthwise":
        y = ops.depthwise_conv(x, kernel, strides=args["strides"], padding=args["padding"],
                               dilation_rate=args["dilation_rate"], data_format="channels_last")
    else:
        y = ops.matmul(x, kernel)
    if bias is not None:
        y = y + bias
    return y


def output_shape(input_shape, kernel_shape, args: dict):
    """Static output shape of ``linear_forward``."""
    kind = args["kind"]
    if kind == "dense":
        return tuple(input_shape[:-1]) + (kernel_shape[-1],)
    out_ch = kernel_shape[-1] if kind == "conv" else kernel_shape[-2] * kernel_shape[-1]
    spatial = []
    for i, size in enumerate(input_shape[1:3]):
        if size is None:
            spatial.append(None)
            continue
        k = (kernel_shape[i] - 1) * args["dilation_rate"][i] + 1
        s = args["strides"][i]
        spatial.append(-(-size // s) if args["padding"] == "same" else (size - k) // s + 1)
    return (input_shape[0], *spatial, out_ch)
