"""SeparableConv2D: split into its depthwise and pointwise halves, pruned, quantized and exported like them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.nn.separable import split_separable


def separable_net(depth_multiplier: int = 2) -> keras.Model:
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.SeparableConv2D(16, 3, padding="same", depth_multiplier=depth_multiplier, name="sep1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.SeparableConv2D(24, 3, strides=2, activation="relu", name="sep2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="fc")(x)
    return keras.Model(inputs, outputs, name="sepnet")


@pytest.fixture(scope="module")
def trained_sepnet(small_mnist):
    from workbench.train import fit

    keras.utils.set_random_seed(0)
    model = separable_net()
    fit(model, (small_mnist.x_train, small_mnist.y_train), TrainConfig(epochs=3, learning_rate=3e-3))
    return model


def test_the_split_model_computes_the_same_function_and_leaves_the_input_alone(small_mnist):
    for model in (separable_net(1), separable_net(2),
                  keras.Sequential([keras.Input((28, 28, 1)), keras.layers.SeparableConv2D(4, 3, name="s"),
                                    keras.layers.Flatten(), keras.layers.Dense(10)])):
        before = [w.copy() for w in model.get_weights()]
        split, names = split_separable(model)
        x = small_mnist.x_test[:16]
        np.testing.assert_allclose(split.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
        assert split.count_params() == model.count_params()
        assert all(type(layer).__name__ != "SeparableConv2D" for layer in split.layers)
        assert {f"{n}_{half}" for n in names for half in ("depthwise", "pointwise")} <= {l.name for l in split.layers}
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    plain = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    assert split_separable(plain) == (plain, [])


def test_both_halves_are_pruned_and_the_report_counts_every_weight(trained_sepnet, small_mnist):
    from workbench.pruning.api import get_masks, prune_model

    pruned, report = prune_model(trained_sepnet, PruneConfig(target="per_layer", sparsity=0.5,
                                                             layer_sparsity={"sep1": 0.75}))
    masks = get_masks(pruned)
    assert {"sep1_depthwise", "sep1_pointwise", "sep2_depthwise", "sep2_pointwise"} <= set(masks)
    for half in ("sep1_depthwise", "sep1_pointwise"):  # a setting that names the separable layer: both halves
        assert 1 - masks[half].mean() == pytest.approx(0.75, abs=0.02)
    assert 1 - masks["sep2_pointwise"].mean() == pytest.approx(0.5, abs=0.02)
    assert report.split == {"sep1": ["sep1_depthwise", "sep1_pointwise"], "sep2": ["sep2_depthwise", "sep2_pointwise"]}
    kernels = sum(int(m.size) for m in masks.values())
    assert sum(layer.params for layer in report.layers) == kernels
    assert report.sparsity == pytest.approx(1 - sum(float(m.sum()) for m in masks.values()) / kernels)
    assert report.skipped == []  # nothing left out: the separable kernels are counted, not skipped
    masked_zeros = sum(int((m == 0).sum()) for m in masks.values())
    assert report.model_params == trained_sepnet.count_params()  # every weight of the model, masks not counted
    assert masked_zeros <= report.model_zeros < masked_zeros + report.model_params - kernels + 1
    assert report.to_dict()["model"]["sparsity"] == pytest.approx(report.model_zeros / report.model_params)


def test_pruned_separable_model_goes_through_qat_to_an_int8_tflite(trained_sepnet, small_mnist):
    from workbench import stages
    from workbench.export.tflite import predict_tflite
    from workbench.metrics.tflite_tensors import weight_tensors

    run = stages.start_run(trained_sepnet, small_mnist, prune=PruneConfig(target="per_layer", sparsity=0.6),
                           quant=QuantConfig(layer_weight_bits={"sep2": 4}),
                           training={"finetune": TrainConfig(epochs=1), "qat": TrainConfig(epochs=1)})
    assert "sep1_depthwise" in {layer.name for layer in run.baseline.layers}
    stages.train_baseline(run)
    stages.prune(run)
    stages.fine_tune(run)
    stages.quantize(run)
    stages.export(run)
    x = small_mnist.x_val[:300]
    agree = (predict_tflite(run.tflite, x).argmax(-1) == run.qat.predict(x, verbose=0).argmax(-1)).mean()
    assert agree >= 0.98
    v = run.validation
    assert v["baseline"] > 0.85 and v["int8"] > v["baseline"] - 0.05, v  # it keeps its digits through every stage
    zeros = sum(int((t.values == 0).sum()) for t in weight_tensors(run.tflite))
    masked = sum(int((layer.get_mask() == 0).sum()) for layer in run.pruned.layers if hasattr(layer, "get_mask"))
    assert zeros >= masked  # pruned zeros stay exactly zero in the int8 tensors
