"""The fused BatchNormalization equals Keras' own layer: outputs, gradients, moving statistics, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from workbench.nn.batchnorm import BatchNormalization, with_fused_batchnorm


def _pair(rng, **kwargs):
    plain = keras.layers.BatchNormalization(momentum=0.9, **kwargs)
    fused = BatchNormalization(momentum=0.9, **kwargs)
    x = rng.normal(1.5, 2.0, (8, 5, 4, 6)).astype(np.float32)
    plain.build(x.shape)
    fused.build(x.shape)
    weights = [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in plain.get_weights()]
    plain.set_weights(weights)
    fused.set_weights(weights)
    return plain, fused, x


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False, "epsilon": 2e-5}])
def test_training_steps_match_keras_and_a_numpy_reference(rng, kwargs):
    plain, fused, x = _pair(rng, **kwargs)
    assert fused.fused(x) and type(fused).__name__ == "BatchNormalization"
    xt = tf.constant(x)
    out = {}
    for name, layer in (("plain", plain), ("fused", fused)):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt, training=True)
            loss = tf.reduce_sum(y * tf.range(6, dtype=tf.float32))
        out[name] = (y.numpy(), tape.gradient(loss, [xt] + layer.trainable_variables))
    np.testing.assert_allclose(out["fused"][0], out["plain"][0], atol=2e-5)
    for a, b in zip(out["fused"][1], out["plain"][1]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    # numpy: normalised with the biased batch variance; moving statistics move towards the same mean and variance
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    gamma = plain.gamma.numpy() if plain.scale else 1.0
    beta = plain.beta.numpy() if plain.center else 0.0
    np.testing.assert_allclose(out["fused"][0], (x - mean) / np.sqrt(var + plain.epsilon) * gamma + beta, atol=5e-5)
    for stat in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(fused, stat).numpy(), getattr(plain, stat).numpy(), rtol=1e-5, atol=1e-6)
    # inference is Keras' own path (its moving statistics equal to float rounding)
    np.testing.assert_allclose(fused(x, training=False).numpy(), plain(x, training=False).numpy(), atol=1e-5)


def test_the_moving_variance_is_the_biased_batch_variance(rng):
    plain, fused, x = _pair(rng)
    before = fused.moving_variance.numpy().copy()
    fused(x, training=True)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.9 * before + 0.1 * x.var(axis=(0, 1, 2)), rtol=1e-5)


def test_inputs_the_kernel_cannot_take_go_through_keras(rng):
    layer = BatchNormalization()
    flat = rng.normal(size=(4, 6)).astype(np.float32)
    layer.build(flat.shape)
    assert not layer.fused(flat)
    np.testing.assert_allclose(layer(flat, training=True).numpy().mean(axis=0), 0.0, atol=1e-5)
    assert not BatchNormalization(epsilon=1e-6).fused(np.zeros((1, 2, 2, 3), np.float32))


def test_mobilenet_uses_it_and_a_saved_model_loads_back_safely(tmp_path):
    from workbench.loading import load_user_model
    from workbench.models import build_model

    model = build_model("mobilenet_v1", (28, 28, 1), 10, alpha=0.25, image_size=32)
    norms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert len(norms) == 27 and all(isinstance(layer, BatchNormalization) for layer in norms)
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    path = tmp_path / "m.keras"
    model.save(path)
    again = load_user_model(path.read_bytes(), name="m.keras", check=False)
    assert isinstance(again.get_layer(norms[0].name), BatchNormalization)
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), atol=1e-6)
    # a model with Keras' layers keeps its weights and outputs when swapped
    plain = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1), keras.layers.BatchNormalization()])
    swapped = with_fused_batchnorm(plain)
    assert isinstance(swapped.layers[-1], BatchNormalization)
    probe = np.random.default_rng(1).random((3, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(swapped(probe).numpy(), plain(probe).numpy())
    back = with_fused_batchnorm(swapped, fused=False)
    assert type(back.layers[-1]) is keras.layers.BatchNormalization
    np.testing.assert_array_equal(back(probe).numpy(), plain(probe).numpy())
