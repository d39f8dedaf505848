"""k-means weight sharing against numpy references, through QAT, saving and int8 export."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError, ModelError
from workbench.export import export_tflite
from workbench.metrics.tflite_tensors import weight_tensors
from workbench.nn.forward import linear_forward
from workbench.pruning.api import get_masks, prune_model
from workbench.quantization import fake_quant
from workbench.quantization.api import quantize_model
from workbench.quantization.layers import QuantWeightLayer
from workbench.quantization.weight_sharing import assign, kmeans_1d, share_weights
from workbench.train import fit


def _lloyd_reference(values, k, iterations=50):
    """Textbook Lloyd iterations with linear initialisation and brute-force nearest centroids."""
    centroids = np.linspace(values.min(), values.max(), k)
    labels = np.abs(values[:, None] - centroids[None, :]).argmin(1)
    for _ in range(iterations):
        for j in range(k):
            if np.any(labels == j):
                centroids[j] = values[labels == j].mean()
        order = np.argsort(centroids, kind="stable")
        centroids = centroids[order]
        new = np.abs(values[:, None] - centroids[None, :]).argmin(1)
        if np.array_equal(new, labels):
            break
        labels = new
    return centroids, labels


@pytest.mark.parametrize("k", [2, 4, 16, 64])
def test_kmeans_matches_a_brute_force_lloyd_reference(rng, k):
    values = np.concatenate([rng.normal(-0.3, 0.05, 700), rng.normal(0.2, 0.1, 900), rng.laplace(0, 0.02, 400)])
    centroids, labels = kmeans_1d(values, k)
    ref_c, ref_l = _lloyd_reference(values, k)
    assert np.allclose(centroids, ref_c, atol=1e-6)
    assert np.array_equal(labels, ref_l)
    # A fixed point: every value sits at its nearest centroid, every used centroid is its members' mean.
    assert np.array_equal(labels, np.abs(values[:, None] - centroids[None, :]).argmin(1))
    for j in np.unique(labels):
        assert centroids[j] == pytest.approx(values[labels == j].mean(), abs=1e-6)
    assert np.all(np.diff(centroids) >= 0)


def test_kmeans_edge_cases():
    c, labels = kmeans_1d(np.array([0.5, 0.5, 0.5]), 4)  # fewer distinct values than clusters
    assert c.shape == (4,) and np.allclose(c[labels], 0.5)
    c, labels = kmeans_1d(np.array([]), 8)  # a fully pruned layer
    assert c.shape == (8,) and labels.size == 0
    assert np.array_equal(assign([-1.0, 0.0, 0.49, 0.51, 9.0], np.array([0.0, 1.0])), [0, 0, 0, 1, 1])
    with pytest.raises(ConfigError, match="Received: k=0"):
        kmeans_1d(np.ones(3), 0)


def test_share_weights_keeps_pruned_zeros_and_at_most_k_values(rng):
    kernel = rng.normal(size=(5, 5, 3, 8)).astype(np.float32)
    mask = (rng.uniform(size=kernel.shape) > 0.7).astype(np.float32)
    centroids, assignment = share_weights(kernel, mask, 6)
    shared = centroids[assignment] * mask
    assert np.all(shared[mask == 0] == 0)
    assert np.unique(shared[mask != 0]).size <= 6
    # Sharing moves each surviving weight to its nearest centroid and no further.
    err = np.abs(shared - kernel)[mask != 0]
    assert np.all(err <= np.abs(kernel[mask != 0][:, None] - centroids[None, :]).min(1) + 1e-6)
    with pytest.raises(ConfigError, match="shapes differ"):
        share_weights(kernel, mask[..., :4], 6)


@pytest.mark.parametrize("value", [1, 257, -3, 2.5, float("nan"), "16", True])
def test_bad_cluster_counts_are_refused(value):
    with pytest.raises(ConfigError, match="Received: clusters="):
        QuantConfig(clusters=value)
    with pytest.raises(ConfigError, match=r"Received: layer_clusters\['fc1'\]="):
        QuantConfig(layer_clusters={"fc1": value})


def test_config_round_trips_and_unknown_layers_are_named(trained_lenet):
    q = QuantConfig(clusters=16, layer_clusters={"fc1": 4})
    assert QuantConfig.from_config(q.get_config()) == q and q.clusters_for("fc1") == 4 and q.clusters_for("x") == 16
    with pytest.raises(ModelError, match=r"layer_clusters names layers the model does not have: \['fc9'\]"):
        quantize_model(trained_lenet, QuantConfig(layer_clusters={"fc9": 4}))


@pytest.fixture(scope="module")
def clustered(trained_lenet, small_mnist):
    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.8))
    qat, report = quantize_model(pruned, QuantConfig(clusters=16, layer_clusters={"fc1": 8}),
                                 calibration_data=small_mnist.x_train[:256])
    return pruned, qat, report


def test_the_centroid_gradient_is_the_sum_of_its_members_gradients(clustered, small_mnist):
    _, qat, report = clustered
    assert {row["name"]: row["clusters"] for row in report.layers} == {"conv1": 16, "conv2": 16, "fc1": 8,
                                                                       "fc2": 16}
    fc2 = qat.get_layer("fc2")
    x = qat.get_layer("fc1").output  # gradient through fc2 only: feed it fc1's output
    feed = keras.Model(qat.inputs, x)(small_mnist.x_train[:64])
    y = small_mnist.y_train[:64]
    with tf.GradientTape(persistent=True) as tape:
        kernel = tf.Variable(fc2.float_kernel())
        tape.watch(kernel)
        loss_c = keras.losses.sparse_categorical_crossentropy(y, fc2(feed, training=False))
        # The same layer with the kernel as a free variable: d loss / d weight for each weight.
        logits = linear_forward(feed, fake_quant.quantize_weights(kernel * fc2.mask, fc2.weight_bits, "dense"),
                                fc2.bias, fc2.args)
        z = fake_quant.quantize_activations(logits, fc2.act_min, fc2.act_max, fc2.activation_bits)
        loss_w = keras.losses.sparse_categorical_crossentropy(y, tf.nn.softmax(z))
    assert np.allclose(loss_c.numpy(), loss_w.numpy(), atol=1e-6)
    g_centroids = tf.convert_to_tensor(tape.gradient(loss_c, fc2.centroids)).numpy()  # gather: IndexedSlices
    g_weights = tape.gradient(loss_w, kernel).numpy() * fc2.mask.numpy()
    expected = np.bincount(fc2.assignment.numpy().ravel(), weights=g_weights.ravel().astype(np.float64),
                           minlength=fc2.clusters)
    assert np.allclose(g_centroids, expected, rtol=1e-4, atol=1e-6)


def test_sharing_survives_qat_saving_and_int8_export(clustered, small_mnist, tmp_path):
    pruned, qat, _ = clustered
    before = {layer.name: layer.assignment.numpy().copy() for layer in [layer for layer in qat.layers if isinstance(layer, QuantWeightLayer)]}
    fit(qat, (small_mnist.x_train[:1024], small_mnist.y_train[:1024]), TrainConfig(epochs=1, learning_rate=1e-3))
    masks = get_masks(pruned)
    for layer in [layer for layer in qat.layers if isinstance(layer, QuantWeightLayer)]:
        live = layer.float_kernel().numpy()
        assert np.array_equal(layer.assignment.numpy(), before[layer.name]), "training must not move indices"
        assert np.all(live[masks[layer.name] == 0] == 0)
        assert np.unique(live[live != 0]).size <= layer.clusters
    path = tmp_path / "clustered.keras"
    qat.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = small_mnist.x_test[:64]
    assert np.allclose(loaded(x).numpy(), qat(x).numpy(), atol=1e-6)
    data, _ = export_tflite(qat, small_mnist.x_train[:200])
    fc1 = [t for t in weight_tensors(data) if t.shape == (500, 800)][0]
    nonzero = fc1.values[fc1.values != 0]
    assert 1 < np.unique(nonzero).size <= 8, "per-tensor fc1 stores at most its 8 shared values"
    assert np.all(fc1.values[masks["fc1"].T == 0] == 0)
