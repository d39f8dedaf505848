"""Model builders: the Caffe LeNet-5, the classic LeNet-5, and MobileNet v1."""

from __future__ import annotations

import keras

from workbench.errors import ModelError
from workbench.nn.batchnorm import with_fused_batchnorm

MODELS = ("lenet5", "lenet5_classic", "mobilenet_v1")


def lenet5(input_shape=(28, 28, 1), classes: int = 10, seed: int | None = 0) -> keras.Model:
    """The Caffe LeNet-5: conv5x5x20, max-pool, conv5x5x50, max-pool, fc500, fc10.

    431,080 parameters (1,724,320 fp32 bytes, the paper's 1.64 MB) for 28x28x1 inputs and
    10 classes. ReLU follows the convolutions, as in TensorFlow ports of the model.
    """
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            keras.layers.Conv2D(20, 5, activation="relu", kernel_initializer=init, name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(50, 5, activation="relu", kernel_initializer=init, name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(500, activation="relu", kernel_initializer=init, name="fc1"),
            keras.layers.Dense(classes, activation="softmax", kernel_initializer=init, name="fc2"),
        ],
        name="lenet5",
    )


def lenet5_classic(input_shape=(28, 28, 1), classes: int = 10, seed: int | None = 0) -> keras.Model:
    """LeCun's 1998 LeNet-5 layout 6-16-120-84-10 (ReLU and max-pool instead of tanh and subsampling)."""
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            keras.layers.Conv2D(6, 5, padding="same", activation="relu", kernel_initializer=init, name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(16, 5, activation="relu", kernel_initializer=init, name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(120, activation="relu", kernel_initializer=init, name="fc1"),
            keras.layers.Dense(84, activation="relu", kernel_initializer=init, name="fc2"),
            keras.layers.Dense(classes, activation="softmax", kernel_initializer=init, name="fc3"),
        ],
        name="lenet5_classic",
    )


def mobilenet_v1(alpha: float = 1.0, input_shape=(32, 32, 1), classes: int = 10, image_size: int | None = None,
                 dropout: float = 1e-3) -> keras.Model:
    """MobileNet v1 from ``keras.applications.MobileNet`` (random init), for small images.

    Args:
        alpha: width multiplier (1.0 is the 4.2M-parameter ImageNet model at 1000 classes).
        input_shape: (H, W, C) of the data.
        classes: number of classes.
        image_size: when set and different from H, W, a Resizing layer scales inputs to it
            (MobileNet needs at least 32x32; Fashion-MNIST's 28x28 becomes 32x32).
    """
    if alpha not in (0.25, 0.5, 0.75, 1.0):
        raise ModelError(f"alpha must be one of 0.25, 0.5, 0.75, 1.0. Received: alpha={alpha!r}")
    h, w, c = tuple(input_shape)
    size = image_size or max(32, h, w)
    inputs = keras.Input(shape=(h, w, c), name="image")
    x = inputs if (h, w) == (size, size) else keras.layers.Resizing(size, size, name="resize")(inputs)
    body = keras.applications.MobileNet(
        input_tensor=x, alpha=alpha, include_top=True, weights=None, classes=classes, dropout=dropout,
    )
    # One input tensor (not a list), so calling the model with an array matches its structure. Its BatchNorm
    # layers train through TensorFlow's fused kernel (workbench.nn.batchnorm: same results, a faster step).
    return with_fused_batchnorm(keras.Model(inputs, body.outputs[0], name=f"mobilenet_v1_{alpha}"))


def build_model(name: str, input_shape=(28, 28, 1), classes: int = 10, **kwargs) -> keras.Model:
    """Build a model of the zoo by name."""
    builders = ZOO
    if name not in builders:
        raise ModelError(f"Unknown model. Received: name={name!r}; use one of {list(MODELS)} or load_user_model().")
    return builders[name](input_shape=input_shape, classes=classes, **kwargs)


ZOO = {"lenet5": lenet5, "lenet5_classic": lenet5_classic, "mobilenet_v1": mobilenet_v1}
