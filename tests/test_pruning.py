"""Pruning wrapper, Taylor saliency, AGP fine-tuning, structured pruning and the sensitivity scan."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from workbench.config import PruneConfig, TrainConfig
from workbench.errors import ConfigError, ModelError
from workbench.models import lenet5
from workbench.pruning import criteria
from workbench.pruning.api import get_masks, prune_model, set_sparsity, strip_pruning
from workbench.pruning.masks import filters_to_keep, sparsity_of
from workbench.pruning.sensitivity import sensitivity_scan
from workbench.pruning.structured import prune_filters
from workbench.pruning.wrapper import PruneWrapper, wrapped_layers
from workbench.train import accuracy, fit


def test_per_layer_pruning_hits_each_target_exactly(trained_lenet):
    targets = {"conv1": 0.3, "conv2": 0.6, "fc1": 0.95, "fc2": 0.5}
    before = [w.copy() for w in trained_lenet.get_weights()]
    pruned, report = prune_model(trained_lenet, PruneConfig(target="per_layer", layer_sparsity=targets))
    assert {layer.name: round(layer.sparsity, 3) for layer in report.layers} == targets
    for layer in wrapped_layers(pruned):
        kernel = layer.layer.kernel.numpy()
        mask = layer.get_mask()
        # The lowest-|w| weights are the pruned ones.
        assert np.abs(kernel[mask == 0]).max() <= np.abs(kernel[mask == 1]).min()
    assert not any(isinstance(layer, PruneWrapper) for layer in trained_lenet.layers), "input model must not change"
    assert all(np.array_equal(a, b) for a, b in zip(before, trained_lenet.get_weights()))


def test_wrapped_forward_equals_numpy_reference(trained_lenet, small_mnist):
    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.8))
    x = small_mnist.x_test[:3]
    fc_in = keras.Model(pruned.inputs, pruned.get_layer("flatten").output)(x).numpy()
    fc1 = pruned.get_layer("fc1")
    expected = np.maximum(fc_in @ (fc1.layer.kernel.numpy() * fc1.get_mask()) + fc1.layer.bias.numpy(), 0)
    got = keras.Model(pruned.inputs, fc1.output)(x).numpy()
    assert np.allclose(got, expected, atol=1e-5)


def test_strip_and_save_keep_masks(trained_lenet, small_mnist, tmp_path):
    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.9))
    x = small_mnist.x_test[:16]
    plain = strip_pruning(pruned)
    assert np.allclose(plain(x).numpy(), pruned(x).numpy(), atol=1e-6)
    assert np.count_nonzero(plain.get_layer("fc1").kernel.numpy()) == np.count_nonzero(get_masks(pruned)["fc1"])
    pruned.save(tmp_path / "p.keras")
    loaded = keras.saving.load_model(tmp_path / "p.keras", safe_mode=True)
    assert all(np.array_equal(get_masks(loaded)[k], v) for k, v in get_masks(pruned).items())
    assert np.allclose(loaded(x).numpy(), pruned(x).numpy(), atol=1e-6)


def test_set_sparsity_is_reversible(trained_lenet, small_mnist):
    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.0))
    x = small_mnist.x_test[:8]
    before = pruned(x).numpy()
    set_sparsity(pruned, "fc1", 0.9)
    assert sparsity_of(get_masks(pruned)["fc1"]) == pytest.approx(0.9)
    assert not np.allclose(pruned(x).numpy(), before)
    set_sparsity(pruned, "fc1", 0.0)
    assert np.allclose(pruned(x).numpy(), before, atol=1e-6)
    with pytest.raises(ModelError, match="No prunable layer named 'nope'"):
        set_sparsity(pruned, "nope", 0.5)


def test_taylor_scores_match_numpy_gradient(rng):
    """Softmax regression: dL/dW = x^T (p - onehot) / N, so |W * dL/dW| has a closed form."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax", name="fc")])
    model.get_layer("fc").set_weights([rng.normal(size=(6, 3)).astype("float32"), np.zeros(3, "float32")])
    x = rng.normal(size=(40, 6)).astype("float32")
    y = rng.integers(0, 3, 40)
    pruned, _ = prune_model(model, PruneConfig(sparsity=0.0))
    got = criteria.accumulate_taylor(pruned, wrapped_layers(pruned), x, y, batch_size=40, batches=1)["fc"]
    w = model.get_layer("fc").kernel.numpy().astype(np.float64)
    logits = x @ w
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = x.T @ (p - np.eye(3)[y]) / len(x)
    assert np.allclose(got, np.abs(w * grad), rtol=1e-4, atol=1e-6)


def test_taylor_pruning_needs_data_and_differs_from_magnitude(trained_lenet, small_mnist):
    with pytest.raises(ConfigError, match="needs data"):
        prune_model(trained_lenet, PruneConfig(criterion="taylor"))
    data = (small_mnist.x_train[:512], small_mnist.y_train[:512])
    taylor, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.5, criterion="taylor"), data=data)
    magnitude, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.5))
    assert sparsity_of(np.concatenate([m.ravel() for m in get_masks(taylor).values()])) == pytest.approx(0.5, abs=1e-4)
    assert not np.array_equal(get_masks(taylor)["fc1"], get_masks(magnitude)["fc1"])


@pytest.mark.slow
def test_agp_fine_tuning_reaches_target_and_zeros_stay_zero(trained_lenet, small_mnist):
    config = PruneConfig(sparsity=0.8, target="per_layer", schedule="polynomial", frequency=5)
    pruned, report = prune_model(trained_lenet, config)
    assert report.sparsity == 0.0
    fit(pruned, (small_mnist.x_train[:1024], small_mnist.y_train[:1024]), TrainConfig(epochs=2), prune=config)
    for layer in wrapped_layers(pruned):
        mask = layer.get_mask()
        assert sparsity_of(mask) == pytest.approx(0.8, abs=1e-3)
        assert np.all(layer.effective_kernel()[mask == 0] == 0.0)
    assert accuracy(pruned, small_mnist.x_test, small_mnist.y_test) > 0.85


def test_unknown_layers_in_config_are_refused(trained_lenet):
    with pytest.raises(ConfigError, match="not prunable here"):
        prune_model(trained_lenet, PruneConfig(target="per_layer", layer_sparsity={"fc9": 0.5}))
    with pytest.raises(ConfigError, match="exclude names"):
        prune_model(trained_lenet, PruneConfig(exclude=("fc9",)))
    with pytest.raises(ModelError, match="no Conv2D"):
        prune_model(keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten()]))


def test_filter_pruning_removes_channels_and_matches_zeroed_model(trained_lenet, small_mnist):
    smaller, report = prune_filters(trained_lenet, 0.5)
    assert smaller.get_layer("conv1").filters == 10 and smaller.get_layer("conv2").filters == 25
    assert smaller.get_layer("fc1").kernel.shape == (4 * 4 * 25, 500)
    assert report.params_after < report.params_before / 2 and report.macs_after < report.macs_before / 2
    reference = keras.models.clone_model(trained_lenet)
    reference.set_weights(trained_lenet.get_weights())
    for name in ("conv1", "conv2"):
        layer = reference.get_layer(name)
        kernel, bias = layer.get_weights()
        drop = np.setdiff1d(np.arange(kernel.shape[-1]), filters_to_keep(kernel, 0.5))
        kernel[..., drop] = 0
        bias[drop] = 0
        layer.set_weights([kernel, bias])
    x = small_mnist.x_test[:32]
    assert np.allclose(smaller(x).numpy(), reference(x).numpy(), atol=1e-5)


def test_filter_pruning_functional_model_with_batchnorm(rng):
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False, name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Conv2D(6, 3, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(4, name="fc")(x)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn1")
    bn.moving_mean.assign(rng.normal(size=8))
    bn.moving_variance.assign(rng.uniform(0.5, 2, 8))
    for layer in (model.get_layer("c1"), model.get_layer("c2")):  # distinct filter norms: a clear ranking
        kernel, *rest = layer.get_weights()
        layer.set_weights([kernel * np.linspace(0.2, 2.0, kernel.shape[-1]), *rest])
    smaller, report = prune_filters(model, layer_sparsity={"c1": 0.5, "c2": 0.5})
    assert [entry["filters_after"] for entry in report.layers] == [4, 3]
    assert smaller.get_layer("bn1").moving_mean.shape == (4,) and smaller.get_layer("fc").kernel.shape == (3, 4)
    # Against the masked model: the removed c1 channels no longer reach c2 (whatever BatchNorm made of them),
    # and the removed c2 filters output nothing.
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    c1_keep = filters_to_keep(model.get_layer("c1").get_weights()[0], 0.5)
    c2_kernel, c2_bias = reference.get_layer("c2").get_weights()
    c2_keep = filters_to_keep(c2_kernel, 0.5)
    assert c1_keep.tolist() == [4, 5, 6, 7] and c2_keep.tolist() == [3, 4, 5]
    c2_kernel[:, :, np.setdiff1d(np.arange(8), c1_keep), :] = 0
    c2_kernel[..., np.setdiff1d(np.arange(6), c2_keep)] = 0
    c2_bias[np.setdiff1d(np.arange(6), c2_keep)] = 0
    reference.get_layer("c2").set_weights([c2_kernel, c2_bias])
    x = rng.normal(size=(5, 12, 12, 3)).astype("float32")
    assert np.allclose(smaller(x).numpy(), reference(x).numpy(), atol=1e-5)
    assert np.allclose(smaller.get_layer("fc").kernel.numpy(), model.get_layer("fc").kernel.numpy()[c2_keep])


def test_sensitivity_scan_returns_a_frame_and_leaves_model_unchanged(trained_lenet, small_mnist):
    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.0))
    before = {k: v.copy() for k, v in get_masks(pruned).items()}
    x, y = small_mnist.x_test[:300], small_mnist.y_test[:300]
    frame = sensitivity_scan(pruned, (x, y), sparsities=(0.0, 0.5, 0.99), layers=["conv1", "fc1"])
    assert list(frame.columns) == ["layer", "sparsity", "accuracy", "params"] and len(frame) == 6
    base = accuracy(trained_lenet, x, y)
    assert np.allclose(frame[frame.sparsity == 0.0].accuracy, base)
    conv1 = frame[frame.layer == "conv1"].set_index("sparsity").accuracy
    assert conv1[0.99] < conv1[0.0]
    assert all(np.array_equal(get_masks(pruned)[k], v) for k, v in before.items())


def test_batchnorm_recalibration_matches_numpy_batch_statistics(rng):
    import keras

    from workbench.train import recalibrate_batchnorm

    inputs = keras.Input((6, 6, 2))
    bn = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(inputs, bn(inputs))
    x = rng.normal(3.0, 2.0, size=(40, 6, 6, 2)).astype("float32")
    assert recalibrate_batchnorm(model, x, batch_size=20, batches=2) == 1
    means = [x[i:i + 20].mean(axis=(0, 1, 2)) for i in (0, 20)]
    variances = [x[i:i + 20].var(axis=(0, 1, 2)) for i in (0, 20)]
    assert np.allclose(bn.moving_mean.numpy(), np.mean(means, axis=0), atol=1e-4)
    # Keras keeps the biased batch variance in its moving average.
    assert np.allclose(bn.moving_variance.numpy(), np.mean(variances, axis=0), rtol=1e-3)
    assert bn.momentum == 0.99


def test_polynomial_per_layer_targets_are_reached_when_the_global_sparsity_is_zero(trained_lenet, small_mnist):
    """The schedule's progress scales each layer's target (it used to be scaled by sparsity / sparsity = 0)."""
    from workbench.pruning.schedules import PolynomialDecay

    schedule = PolynomialDecay(0.0, 0, 100, frequency=10)
    assert schedule.fraction_at(0) == 0.0 and schedule.fraction_at(100) == 1.0
    assert schedule.fraction_at(50) == pytest.approx(1 - 0.5 ** 3)
    targets = {"conv1": 0.2, "conv2": 0.5, "fc1": 0.9, "fc2": 0.4}
    config = PruneConfig(sparsity=0.0, target="per_layer", layer_sparsity=targets, schedule="polynomial")
    pruned, _ = prune_model(trained_lenet, config)
    fit(pruned, (small_mnist.x_train[:512], small_mnist.y_train[:512]), TrainConfig(epochs=1), prune=config)
    assert {name: round(sparsity_of(mask), 3) for name, mask in get_masks(pruned).items()} == targets


def _masked_reference(model, report):
    """The original model with every removed channel cut where it enters its consumer (whatever BatchNorm,
    ReLU or a depthwise conv made of it on the way): what the smaller model must compute."""
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    for entry in report.layers:
        removed = np.setdiff1d(np.arange(entry["filters_before"]), entry["kept"])
        consumer = reference.get_layer(entry["into"])
        kernel, *rest = consumer.get_weights()
        if kernel.ndim == 4:
            kernel[:, :, removed, :] = 0
        elif entry["flatten"] == "Flatten":
            channels = entry["filters_before"]
            kernel[(np.arange(kernel.shape[0] // channels)[:, None] * channels + removed[None, :]).ravel()] = 0
        else:
            kernel[removed, :] = 0
        consumer.set_weights([kernel, *rest])
    return reference


def _mobilenet_like(rng):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="c0")(inputs)
    for i, width in ((1, 8), (2, 5)):
        x = keras.layers.BatchNormalization(name=f"bn{i}a")(x)
        x = keras.layers.ReLU(6.0, name=f"relu{i}a")(x)
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}b")(x)
        x = keras.layers.ReLU(6.0, name=f"relu{i}b")(x)
        x = keras.layers.Conv2D(width, 1, use_bias=False, name=f"pw{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(7, activation="relu", name="fc")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(size=n), rng.normal(size=n),
                               rng.uniform(0.5, 2, n)])
        elif layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return model


def test_filter_pruning_goes_through_depthwise_chains_and_removes_dense_neurons(rng):
    model = _mobilenet_like(rng)
    smaller, report = prune_filters(model, 0.5, layer_sparsity={"fc": 0.5, "pw2": 0.0})
    pruned = {entry["name"]: entry for entry in report.layers}
    assert set(pruned) == {"c0", "pw1", "fc"} and report.skipped == []
    assert pruned["c0"]["through"] == ["bn1a", "relu1a", "dw1", "bn1b", "relu1b"] and pruned["c0"]["into"] == "pw1"
    assert smaller.get_layer("dw1").kernel.shape == (3, 3, 3, 1) and smaller.get_layer("bn2b").moving_mean.shape == (4,)
    assert smaller.get_layer("pw2").kernel.shape == (1, 1, 4, 5)
    assert smaller.get_layer("fc").units == 3 and smaller.get_layer("out").kernel.shape == (3, 3)  # 7 - round(3.5)
    assert report.params_after < report.params_before and report.macs_after < report.macs_before
    x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    assert np.allclose(smaller(x).numpy(), _masked_reference(model, report)(x).numpy(), atol=1e-5)


def test_filter_pruning_shrinks_mobilenet_and_lenet_fc_layers(trained_lenet, small_mnist, rng):
    from workbench.models import mobilenet_v1

    mobilenet = mobilenet_v1(input_shape=(32, 32, 1), classes=10, alpha=0.25)
    smaller, report = prune_filters(mobilenet, 0.5)
    assert {e["name"] for e in report.layers} >= {f"conv_pw_{i}" for i in range(1, 14)}
    assert smaller.count_params() < 0.5 * mobilenet.count_params()
    x = rng.normal(size=(2, 32, 32, 1)).astype("float32")
    assert np.allclose(smaller(x).numpy(), _masked_reference(mobilenet, report)(x).numpy(), atol=1e-5)
    lenet, lenet_report = prune_filters(trained_lenet, 0.0, layer_sparsity={"fc1": 0.8})
    assert lenet.get_layer("fc1").units == 100 and lenet.get_layer("fc2").kernel.shape[0] == 100
    x = small_mnist.x_test[:16]
    assert np.allclose(lenet(x).numpy(), _masked_reference(trained_lenet, lenet_report)(x).numpy(), atol=1e-5)
    with pytest.raises(ConfigError, match="Dense neurons only"):
        prune_filters(mobilenet, 0.5, layer_sparsity={"conv_dw_1": 0.5})
