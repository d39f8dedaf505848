"""QuantWeightLayer: the QAT form of a Conv2D, DepthwiseConv2D or Dense layer.

It holds the (BN-folded) kernel and bias, the pruning mask, and the activation range as
non-trainable variables, so all of them are saved and exported with the model. Forward pass:
fake_quant_w(kernel * mask) -> conv/matmul + bias -> fused activation -> fake_quant_a(EMA range)
(-> softmax, left to the converter's calibration, for a classifier head).

With ``clusters = k > 0`` (k-means weight sharing) the kernel is ``centroids[assignment] * mask``:
the k centroids are what trains (each gets the sum of its members' gradients, as in Deep
Compression), the assignment is a non-trainable index per weight, so the layer keeps at most k
distinct non-zero values through QAT and export.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

from workbench.config import check_bits, check_clusters
from workbench.nn.forward import apply_activation, linear_forward, output_shape
from workbench.quantization import fake_quant, grid, weight_sharing


def quantize_output(layer, y, training):
    """Fake-quantize a layer's output over its EMA range (act_min, act_max, act_steps), which training updates."""
    if training:
        lo, hi = fake_quant.ema_update(layer.act_min, layer.act_max, tf.reduce_min(y), tf.reduce_max(y),
                                       layer.ema_decay, tf.equal(layer.act_steps, 0.0))
        layer.act_min.assign(lo)
        layer.act_max.assign(hi)
        layer.act_steps.assign_add(1.0)
    return fake_quant.quantize_activations(y, layer.act_min, layer.act_max, layer.activation_bits)


@keras.saving.register_keras_serializable(package="workbench")
class QuantWeightLayer(keras.layers.Layer):
    """Quantization-aware conv / depthwise / dense layer with a fixed pruning mask."""

    def __init__(self, args: dict, kernel_shape, activation: str = "linear", weight_bits: int = 8,
                 activation_bits: int = 8, ema_decay: float = 0.99, clusters: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.args = dict(args)
        for key in ("strides", "dilation_rate"):
            if key in self.args:
                self.args[key] = tuple(self.args[key])
        self.args["use_bias"] = True
        self.kernel_shape = tuple(int(d) for d in kernel_shape)
        self.activation = activation
        self.weight_bits = check_bits(weight_bits, "weight_bits")
        self.activation_bits = check_bits(activation_bits, "activation_bits")
        self.ema_decay = float(ema_decay)
        self.clusters = check_clusters(clusters)
        self.store_bits = None  # set only while exporting for speed (weights_stored_as_int8), never saved

    @property
    def kind(self) -> str:
        return self.args["kind"]

    def build(self, input_shape):
        out = self.kernel_shape[-1] if self.kind != "depthwise" else self.kernel_shape[-2] * self.kernel_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_shape, initializer="glorot_uniform",
                                      trainable=not self.clusters)
        if self.clusters:
            self.centroids = self.add_weight(name="centroids", shape=(self.clusters,), initializer="zeros")
            self.assignment = self.add_weight(name="assignment", shape=self.kernel_shape, initializer="zeros",
                                              dtype="int32", trainable=False)
        self.bias = self.add_weight(name="bias", shape=(out,), initializer="zeros")
        self.mask = self.add_weight(name="mask", shape=self.kernel_shape, initializer="ones", trainable=False)
        self.act_min = self.add_weight(name="act_min", shape=(), initializer="zeros", trainable=False)
        self.act_max = self.add_weight(name="act_max", shape=(), initializer="zeros", trainable=False)
        self.act_steps = self.add_weight(name="act_steps", shape=(), initializer="zeros", trainable=False)
        self.built = True

    def float_kernel(self):
        """The kernel before fake quantization: pruned entries zero, shared values if clustered."""
        if self.clusters:
            return tf.gather(self.centroids, self.assignment) * self.mask
        return self.kernel * self.mask

    def share_weights(self, kernel: np.ndarray, mask: np.ndarray) -> None:
        """Set kernel and mask; with clusters, also k-means the surviving weights into the codebook.

        A clustered layer keeps ``kernel`` as the float weights its codebook was built from (not
        trained); ``float_kernel()`` is the live value.
        """
        self.mask.assign(mask)
        self.kernel.assign(kernel * mask)
        if self.clusters:
            centroids, assignment = weight_sharing.share_weights(kernel, mask, self.clusters)
            self.centroids.assign(centroids)
            self.assignment.assign(assignment)

    def quantized_kernel(self, training: bool = False):
        return fake_quant.quantize_weights(self.float_kernel(), self.weight_bits, self.kind, self.store_bits,
                                           training=bool(training))

    def call(self, inputs, training=None):
        y = linear_forward(inputs, self.quantized_kernel(training), self.bias, self.args)
        head = self.activation == "softmax"
        y = y if head else apply_activation(y, self.activation)
        y = quantize_output(self, y, training)
        return tf.nn.softmax(y) if head else y

    def compute_output_shape(self, input_shape):
        return output_shape(input_shape, self.kernel_shape, self.args)

    def get_config(self):
        config = super().get_config()
        config.update(args=self.args, kernel_shape=list(self.kernel_shape), activation=self.activation,
                      weight_bits=self.weight_bits, activation_bits=self.activation_bits, ema_decay=self.ema_decay,
                      clusters=self.clusters)
        return config

    @property
    def calibrated(self) -> bool:
        return float(self.act_steps.numpy()) > 0


INT4_BITS = 4  # the TFLite converter packs weights of this many bits or fewer as INT4 (two per byte)


@contextlib.contextmanager
def weights_stored_as_int8(model: keras.Model):
    """While open, the model's layers of at most 4 weight bits (which the converter packs as INT4) compute the
    same values, but as an 8-bit fake-quant op: a model converted inside stores every weight as int8, which
    LiteRT's fast int8 kernels run (export target "speed")."""
    layers = [layer for layer in _all_layers(model)
              if isinstance(layer, QuantWeightLayer) and layer.weight_bits <= INT4_BITS]
    for layer in layers:
        layer.store_bits = 8
    try:
        yield layers
    finally:
        for layer in layers:
            layer.store_bits = None


def _all_layers(layer):
    for inner in getattr(layer, "layers", []):
        yield inner
        yield from _all_layers(inner)


@keras.saving.register_keras_serializable(package="workbench")
class Absorbed(keras.layers.Layer):
    """Stands where a BatchNormalization or activation was folded/fused into the preceding layer."""

    def __init__(self, absorbed_into: str = "", **kwargs):
        super().__init__(**kwargs)
        self.absorbed_into = absorbed_into

    def call(self, inputs, *args, **kwargs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "absorbed_into": self.absorbed_into}


@keras.saving.register_keras_serializable(package="workbench")
class QuantOutput(keras.layers.Layer):
    """A layer without weights whose output the int8 model requantizes (Add, GlobalAveragePooling2D, a ReLU
    that no weight layer absorbed), with its output fake-quantized over an EMA range, as QuantWeightLayer's.

    Without it, QAT kept these outputs in float while the converter quantized them over ranges it calibrated
    itself, and the int8 model drifted from the QAT model (90-99% agreement on a small residual network).
    The wrapped layer is rebuilt from its config (standard Keras layers only).
    """

    def __init__(self, inner, activation_bits: int = 8, ema_decay: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner if isinstance(inner, keras.layers.Layer) else keras.saving.deserialize_keras_object(inner)
        self.activation_bits = check_bits(activation_bits, "activation_bits")
        self.ema_decay = float(ema_decay)

    def build(self, input_shape):
        self.act_min = self.add_weight(name="act_min", shape=(), initializer="zeros", trainable=False)
        self.act_max = self.add_weight(name="act_max", shape=(), initializer="zeros", trainable=False)
        self.act_steps = self.add_weight(name="act_steps", shape=(), initializer="zeros", trainable=False)
        self.built = True

    def call(self, inputs, training=None):
        return quantize_output(self, self.inner(inputs), training)

    def compute_output_shape(self, input_shape):
        return self.inner.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "inner": keras.saving.serialize_keras_object(self.inner),
                "activation_bits": self.activation_bits, "ema_decay": self.ema_decay}

    @property
    def calibrated(self) -> bool:
        return float(self.act_steps.numpy()) > 0
