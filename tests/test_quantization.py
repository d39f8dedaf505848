"""Fake quantization, BN folding and the QAT transform against numpy references."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from workbench.config import PruneConfig, QuantConfig
from workbench.errors import ConfigError, ModelError
from workbench.pruning.api import prune_model, get_masks
from workbench.quantization import fake_quant, grid
from workbench.quantization.api import quantize_model
from workbench.quantization.layers import QuantWeightLayer
from workbench.quantization.bn_fold import fold_batchnorm


def _ref_symmetric(w, m, bits):
    """Numpy FakeQuant with narrow range over [-m, m] (TF's nudged floor(x + 0.5) rounding)."""
    q = 2 ** (bits - 1) - 1
    scale = m / q
    clamped = np.clip(w, -m, m)
    return np.floor((clamped + m) / scale + 0.5) * scale - m


def _ref_asymmetric(x, lo, hi, bits):
    qmax = 2 ** bits - 1
    scale = (hi - lo) / qmax
    zero = np.clip(np.round(-lo / scale), 0, qmax)
    nlo, nhi = -zero * scale, (qmax - zero) * scale
    return np.floor((np.clip(x, nlo, nhi) - nlo) / scale + 0.5) * scale + nlo


@pytest.mark.parametrize("bits", range(2, 9))
def test_dense_weights_per_tensor_match_reference_and_level_count(rng, bits):
    w = rng.uniform(-1, 1, size=(64, 32)).astype(np.float32)
    w[0, 0], w[0, 1] = 1.0, -1.0  # both ends of the symmetric range are used
    got = fake_quant.quantize_weights(tf.constant(w), bits, "dense").numpy()
    m = np.abs(w).max()
    assert np.allclose(got, _ref_symmetric(w, m, bits), atol=1e-6 * m)
    assert len(np.unique(np.round(got / (m / (2 ** (bits - 1) - 1))))) == fake_quant.weight_levels(bits)
    assert np.all(got[w == 0] == 0)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_conv_weights_are_per_output_channel(rng, bits):
    w = (rng.normal(size=(3, 3, 4, 5)) * np.arange(1, 6)).astype(np.float32)
    w[0, 0, 0, :] = 0.0
    got = fake_quant.quantize_weights(tf.constant(w), bits, "conv").numpy()
    for c in range(5):
        m = np.abs(w[..., c]).max()
        assert np.allclose(got[..., c], _ref_symmetric(w[..., c], m, bits), atol=1e-6 * m)
    assert np.all(got[0, 0, 0, :] == 0.0)


def test_depthwise_weights_are_per_channel_over_in_times_multiplier(rng):
    w = (rng.normal(size=(3, 3, 4, 2)) * np.arange(1, 9).reshape(4, 2)).astype(np.float32)
    got = fake_quant.quantize_weights(tf.constant(w), 4, "depthwise").numpy()
    for i in range(4):
        for j in range(2):
            m = np.abs(w[:, :, i, j]).max()
            assert np.allclose(got[:, :, i, j], _ref_symmetric(w[:, :, i, j], m, 4), atol=1e-6 * m)


@pytest.mark.parametrize("bits", [2, 5, 8])
def test_activation_fake_quant_matches_reference(rng, bits):
    x = rng.uniform(-2, 7, size=1000).astype(np.float32)
    got = fake_quant.quantize_activations(tf.constant(x), -1.5, 6.0, bits).numpy()
    assert np.allclose(got, _ref_asymmetric(x, -1.5, 6.0, bits), atol=1e-5)
    assert len(np.unique(got)) <= 2 ** bits


def test_ema_update_starts_from_batch_then_averages():
    lo, hi = fake_quant.ema_update(0.0, 0.0, tf.constant(-1.0), tf.constant(4.0), 0.9, tf.constant(True))
    assert (float(lo), float(hi)) == (-1.0, 4.0)
    lo, hi = fake_quant.ema_update(lo, hi, tf.constant(1.0), tf.constant(2.0), 0.9, tf.constant(False))
    assert float(lo) == pytest.approx(0.9 * -1.0 + 0.1 * 0.0) and float(hi) == pytest.approx(0.9 * 4 + 0.1 * 2)


@pytest.mark.parametrize("kind", ["conv", "depthwise", "dense"])
def test_batchnorm_folding_matches_unfolded_model(rng, kind):
    if kind == "dense":
        layer, shape = keras.layers.Dense(6, name="w"), (5,)
    elif kind == "conv":
        layer, shape = keras.layers.Conv2D(6, 3, name="w"), (7, 7, 3)
    else:
        layer, shape = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="w"), (7, 7, 3)
    inputs = keras.Input(shape)
    bn = keras.layers.BatchNormalization(epsilon=1e-3, name="bn")
    model = keras.Model(inputs, bn(layer(inputs)))
    channels = bn.gamma.shape[0]
    bn.set_weights([rng.uniform(0.5, 2, channels), rng.normal(size=channels), rng.normal(size=channels),
                    rng.uniform(0.1, 3, channels)])
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    kernel, bias = fold_batchnorm(layer.kernel.numpy(), layer.bias.numpy(), bn.gamma.numpy(), bn.beta.numpy(),
                                  bn.moving_mean.numpy(), bn.moving_variance.numpy(), bn.epsilon, kind)
    folded = layer.__class__.from_config(layer.get_config())
    folded_model = keras.Model(inputs, folded(inputs))
    folded.set_weights([kernel, bias])
    x = rng.normal(size=(4, *shape)).astype("float32")
    assert np.allclose(folded_model(x).numpy(), model(x, training=False).numpy(), atol=1e-5)


def test_quantize_model_folds_bn_fuses_relu6_and_keeps_masks(rng):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False, name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(6.0, name="r1")(x)
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(6.0, name="r2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="fc")(x)
    model = keras.Model(inputs, outputs)
    for bn in ("bn1", "bn2"):
        layer = model.get_layer(bn)
        n = layer.gamma.shape[0]
        layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n) * 0.1, rng.normal(size=n) * 0.1,
                           rng.uniform(0.5, 2, n)])
    pruned, _ = prune_model(model, PruneConfig(target="per_layer", sparsity=0.5))
    data = rng.uniform(size=(64, 16, 16, 3)).astype("float32")
    qat, report = quantize_model(pruned, QuantConfig(), calibration_data=data)
    assert report.folded == [("bn1", "c1"), ("bn2", "dw")]
    assert report.fused == [("r1", "c1"), ("r2", "dw")]
    assert {layer["name"]: layer["per_channel"] for layer in report.layers} == {"c1": True, "dw": True, "fc": False}
    masks = get_masks(pruned)
    for layer in (layer for layer in qat.layers if isinstance(layer, QuantWeightLayer)):
        q = layer.quantized_kernel().numpy()
        assert np.all(q[masks[layer.name] == 0] == 0.0)
        assert layer.calibrated
    # 8-bit QAT stays close to the float model.
    assert np.abs(qat(data[:8]).numpy() - pruned(data[:8]).numpy()).max() < 0.05


def test_low_bit_layers_have_few_levels(trained_lenet):
    qat, _ = quantize_model(trained_lenet, QuantConfig(weight_bits=8, layer_weight_bits={"fc1": 4}))
    levels = {layer.name: len(np.unique(grid.integer_weights(layer.quantized_kernel().numpy(), layer.kind,
                                                             layer.weight_bits)))
              for layer in qat.layers if isinstance(layer, QuantWeightLayer)}
    assert levels["fc1"] <= 15 and levels["conv2"] > 15


def test_quantize_refuses_bad_input(trained_lenet):
    qat, _ = quantize_model(trained_lenet)
    with pytest.raises(ModelError, match="already quantization-aware"):
        quantize_model(qat)
    with pytest.raises(ModelError, match="fc9"):
        quantize_model(trained_lenet, QuantConfig(layer_weight_bits={"fc9": 4}))
    with pytest.raises(ConfigError):
        quantize_model(trained_lenet, QuantConfig(weight_bits=1))
    lstm = keras.Sequential([keras.Input((8, 4)), keras.layers.LSTM(3, name="rnn"), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match=r"Unsupported layers: rnn \(LSTM\)"):
        quantize_model(lstm)


def test_qat_model_saves_and_loads(trained_lenet, small_mnist, tmp_path):
    qat, _ = quantize_model(trained_lenet, calibration_data=small_mnist.x_train[:256])
    qat.save(tmp_path / "q.keras")
    loaded = keras.saving.load_model(tmp_path / "q.keras", safe_mode=True)
    x = small_mnist.x_test[:16]
    assert np.allclose(loaded(x).numpy(), qat(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("kind, shape", [("dense", (40, 12)), ("conv", (3, 3, 4, 6)), ("depthwise", (3, 3, 5, 2))])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_the_one_grid_equals_tf_fake_quant(kind, shape, bits, rng):
    """grid.py (numpy, used by estimates, views and labs) and the in-graph fake-quant op give the same weights."""
    kernel = rng.normal(size=shape).astype(np.float32)
    kernel[np.abs(kernel) < 0.3] = 0.0  # pruned weights must stay exactly zero on both
    tf_values = fake_quant.quantize_weights(tf.constant(kernel), bits, kind).numpy()
    np_values = grid.quantize(kernel, kind, bits)
    assert np.allclose(tf_values, np_values, atol=1e-6)
    trained = fake_quant.quantize_weights(tf.constant(kernel), bits, kind, training=True).numpy()  # training's ops
    assert np.allclose(trained, np_values, atol=1e-6) and np.all(trained[kernel == 0] == 0)
    ints = grid.integer_weights(kernel, kind, bits)
    assert np.all(ints[kernel == 0] == 0) and np.abs(ints).max() == grid.max_level(bits)
    # Reference by hand: per tensor for dense, per output channel (in x mult for depthwise) otherwise.
    flat = kernel.reshape(-1, shape[-2] * shape[-1]) if kind == "depthwise" else kernel.reshape(-1, shape[-1])
    m = np.abs(kernel).max() if kind == "dense" else np.abs(flat).max(axis=0)
    q = 2 ** (bits - 1) - 1
    assert np.array_equal(ints.reshape(flat.shape), np.round(flat / (m / q)).astype(np.int32))
    assert len(grid.grid_values(kernel, kind, bits)) == grid.weight_levels(bits) == 2 * q + 1


def residual_net() -> keras.Model:
    """Conv+BN+ReLU, a depthwise+BN+ReLU -> pointwise+BN branch added back, ReLU, conv, global pooling, dense."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(16, 3, padding="same", name="c1")(inputs)
    x = keras.layers.ReLU(name="r1")(keras.layers.BatchNormalization(name="bn1")(x))
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    y = keras.layers.ReLU(name="r2")(keras.layers.BatchNormalization(name="bn2")(y))
    y = keras.layers.BatchNormalization(name="bn3")(keras.layers.Conv2D(16, 1, name="pw")(y))
    x = keras.layers.ReLU(name="r3")(keras.layers.Add(name="add")([x, y]))
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="fc")(x), name="residual")


def test_int8_residual_model_agrees_with_its_qat_model(small_mnist, tmp_path):
    """Add, global pooling and a free-standing ReLU are requantized in the int8 model; QAT fake-quantizes their
    outputs too (QuantOutput), so the two models agree wherever the answer is not a tie at int8 resolution."""
    from workbench.config import TrainConfig
    from workbench.export.tflite import export_tflite, predict_tflite
    from workbench.loading import load_user_model
    from workbench.quantization.layers import QuantOutput
    from workbench.train import fit

    model = residual_net()
    fit(model, (small_mnist.x_train, small_mnist.y_train), TrainConfig(epochs=6, learning_rate=3e-3))
    qat, _ = quantize_model(model, QuantConfig(), calibration_data=small_mnist.x_train[:512])
    assert {layer.name for layer in qat.layers if isinstance(layer, QuantOutput)} == {"add", "r3", "gap"}
    fit(qat, (small_mnist.x_train, small_mnist.y_train), TrainConfig(epochs=1, learning_rate=1e-4))
    data, _ = export_tflite(qat, small_mnist.x_train[:200])
    x = small_mnist.x_test
    p_int8, p_qat = predict_tflite(data, x), qat.predict(x, verbose=0)
    a, b = p_int8.argmax(-1), p_qat.argmax(-1)
    top_int8, top_qat = np.sort(p_int8, axis=1), np.sort(p_qat, axis=1)
    clear = (top_int8[:, -1] - top_int8[:, -2] > 1e-6) & (top_qat[:, -1] - top_qat[:, -2] > 1 / 256)
    assert clear.mean() > 0.8
    assert (a[clear] == b[clear]).mean() >= 0.995  # 0.991 with these outputs left in float
    assert (a == b).mean() >= 0.95  # ties included: 0.957 to 0.96+ by CPU (its float kernels break ties differently)
    qat.save(tmp_path / "qat.keras")  # the wrapper saves and loads in safe mode
    again = load_user_model(tmp_path / "qat.keras", check=False)
    np.testing.assert_allclose(again.predict(x[:32], verbose=0), p_qat[:32], atol=1e-6)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_a_wider_storage_grid_holds_every_value_of_the_coarse_grid_exactly(bits):
    from workbench.quantization.grid import max_level, storage_factor

    f = storage_factor(bits, 8)
    coarse = np.arange(-max_level(bits), max_level(bits) + 1) / max_level(bits)  # values over m = 1
    fine_step = f / 127
    assert f >= 1 and np.abs(coarse).max() <= f  # every coarse value lies inside the int8 range
    assert np.allclose(coarse / fine_step, np.round(coarse / fine_step), atol=1e-9)
    assert np.round(coarse / fine_step).max() <= 127
    with pytest.raises(ValueError, match="Received: bits=8, store_bits=4"):
        storage_factor(8, 4)


@pytest.mark.parametrize("kind,shape", [("conv", (3, 3, 4, 6)), ("depthwise", (3, 3, 5, 2)), ("dense", (40, 7))])
@pytest.mark.parametrize("bits", [2, 4])
def test_stored_as_int8_the_fake_quant_op_gives_the_coarse_grid_values(rng, kind, shape, bits):
    kernel = tf.constant(rng.normal(size=shape).astype(np.float32))
    coarse = fake_quant.quantize_weights(kernel, bits, kind).numpy()
    stored = fake_quant.quantize_weights(kernel, bits, kind, store_bits=8).numpy()
    assert np.allclose(stored, coarse, rtol=1e-5, atol=1e-7)
    assert np.allclose(coarse, grid.quantize(kernel.numpy(), kind, bits), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind, shape", [("conv", (1, 1, 256, 128)), ("conv", (3, 3, 8, 16)), ("depthwise", (3, 3, 32, 1))])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_training_per_channel_fake_quant_matches_tfs_op_and_its_gradient(kind, shape, bits, rng):
    """The elementwise per-channel fake quantization used while training (fake_quant.per_channel_train) against
    TF's per-channel op: the same values to a float rounding (at most one step, on rounding boundaries only),
    the same straight-through gradient, and pruned zeros exactly zero."""
    kernel = (rng.normal(size=shape) * rng.uniform(0.01, 3, size=shape[-1])).astype(np.float32)
    kernel[np.abs(kernel) < 0.2] = 0.0
    variable = tf.Variable(kernel)
    upstream = tf.constant(rng.normal(size=shape).astype(np.float32))
    results = {}
    for training in (False, True):
        with tf.GradientTape() as tape:
            q = fake_quant.quantize_weights(variable, bits, kind, training=training)
            loss = tf.reduce_sum(q * upstream)
        results[training] = (q.numpy(), tape.gradient(loss, variable).numpy())
    (op, op_grad), (fast, fast_grad) = results[False], results[True]
    flat = kernel.reshape(-1, shape[-2] * shape[-1]) if kind == "depthwise" else kernel.reshape(-1, shape[-1])
    step = np.abs(flat).max(axis=0) / (2 ** (bits - 1) - 1)
    diff = np.abs(fast - op).reshape(flat.shape)
    flips = diff > step / 2  # a weight on a rounding boundary, one step away
    assert np.all(diff <= step * (1 + 1e-5)) and flips.mean() < 1e-3
    assert np.all(diff[~flips] <= 1e-6 * np.broadcast_to(np.abs(flat).max(axis=0), flat.shape)[~flips])  # a rounding
    assert np.all(fast[kernel == 0] == 0)
    assert np.array_equal(fast_grad, op_grad)
    # straight through: the upstream gradient, except where a channel's largest weight falls a float rounding
    # outside the nudged range (TF's op stops it there too)
    passed = fast_grad == upstream.numpy()
    assert passed.mean() > 0.99 and np.all(passed | (np.abs(kernel) >= np.abs(flat).max(axis=0).min() * 0.999))
