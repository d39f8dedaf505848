"""Config classes refuse wrong container types and out-of-range values with a ConfigError naming what came."""

from __future__ import annotations

import pytest

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError


@pytest.mark.parametrize("cls, kwargs, message", [
    (PruneConfig, {"target": "per_layer", "layer_sparsity": [("fc1", 0.5)]}, "must map layer names"),
    (PruneConfig, {"target": "per_layer", "layer_sparsity": "fc1=0.5"}, "must map layer names"),
    (PruneConfig, {"target": "threshold", "layer_threshold": {"fc1": float("inf")}}, ">= 0"),
    (PruneConfig, {"exclude": 5}, "list of layer names"),
    (PruneConfig, {"exclude": ["conv1", 3]}, "list of layer names"),
    (PruneConfig, {"end_step": True}, "end_step"),
    (QuantConfig, {"layer_weight_bits": 4}, "must map layer names"),
    (QuantConfig, {"layer_clusters": ["fc1"]}, "must map layer names"),
    (QuantConfig, {"fold_batchnorm": "no"}, "true or false"),
    (QuantConfig, {"ema_decay": True}, "ema_decay"),
    (TrainConfig, {"learning_rate": float("inf")}, "learning_rate"),
    (TrainConfig, {"learning_rate": float("nan")}, "learning_rate"),
    (TrainConfig, {"batch_size": 10**10}, "batch_size must be at most"),
    (TrainConfig, {"batch_size": 1e10}, "whole number"),
    (TrainConfig, {"epochs": 10**7}, "epochs at most"),
])
def test_wrong_types_and_ranges_are_config_errors(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        cls(**kwargs)
    assert "Received" in str(info.value) and len(str(info.value)) <= 400


def test_a_lone_excluded_name_is_one_name_not_its_letters():
    assert PruneConfig(exclude="conv1").exclude == ("conv1",)
    assert PruneConfig.from_config(PruneConfig(exclude="conv1").get_config()).exclude == ("conv1",)


def test_from_json_with_wrong_types_is_a_config_error():
    with pytest.raises(ConfigError, match="must map layer names"):
        QuantConfig.from_json('{"layer_weight_bits": 4}')


def test_models_with_code_inside_are_refused_by_prune_model():
    import keras

    from workbench.errors import ModelError
    from workbench.pruning.api import prune_model

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t * 2, name="double")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ModelError, match="double \\(Lambda\\)"):
        prune_model(model)


@pytest.mark.parametrize("images", ["bool", "complex"])
def test_bool_and_complex_images_are_refused(images):
    import numpy as np

    from workbench.data.dataset import as_images
    from workbench.errors import DataError

    x = np.zeros((4, 8, 8), dtype=bool) if images == "bool" else np.zeros((4, 8, 8), dtype=np.complex64)
    with pytest.raises(DataError, match="real numbers"):
        as_images(x, np.zeros(4, np.int64), "test")


def test_a_model_upload_without_any_data_is_refused_and_changes_nothing(trained_lenet, tmp_path):
    from workbench.widgets import SessionState
    from workbench.widgets.loading import SessionLoader

    path = tmp_path / "m.keras"
    trained_lenet.save(path)
    state = SessionState()
    loader = SessionLoader(state)
    data = path.read_bytes()
    assert not loader.upload(({"name": "m.keras", "size": len(data), "content": data},))
    assert "needs data" in state.error and state.model is None and state.model_name == ""


@pytest.mark.parametrize("kind", ["rescaling", "float16"])
def test_models_the_workbench_would_feed_wrongly_are_refused(kind):
    import keras

    from workbench.errors import ModelError
    from workbench.loading import check_model

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs) if kind == "rescaling" else inputs
    x = keras.layers.Flatten()(x)
    dense = keras.layers.Dense(10, dtype="float16" if kind == "float16" else None, name="fc")
    model = keras.Model(inputs, dense(x))
    message = "scaled to \\[0, 1\\]" if kind == "rescaling" else "not float32"
    with pytest.raises(ModelError, match=message):
        check_model(model, "upload")


def test_layers_left_out_of_pruning_are_listed_with_the_reason():
    import keras

    from workbench.config import PruneConfig
    from workbench.pruning.api import prune_model

    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2DTranspose(4, 3, name="up")(inputs)
    x = keras.layers.SeparableConv2D(4, 3, name="sep")(x)  # pruned as its two halves (tests/test_separable.py)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(x))
    _, report = prune_model(model, PruneConfig(sparsity=0.5))
    assert [layer.name for layer in report.layers] == ["sep_depthwise", "sep_pointwise", "fc"]
    assert report.skipped == [
        ("up", "Conv2DTranspose is not prunable here (Conv2D, DepthwiseConv2D, SeparableConv2D and Dense are)")]


def test_a_valid_upload_switches_the_session_and_keeps_the_data(trained_lenet, small_mnist, tmp_path):
    import io

    import numpy as np

    from workbench.widgets import SessionState
    from workbench.widgets.loading import SessionLoader

    path = tmp_path / "m.keras"
    trained_lenet.save(path)
    model_bytes = path.read_bytes()
    buf = io.BytesIO()
    np.savez(buf, images=(small_mnist.x_train[:300, ..., 0] * 255).astype(np.uint8), labels=small_mnist.y_train[:300])
    state = SessionState()
    loader = SessionLoader(state, eval_size=50)
    items = ({"name": "mine.npz", "size": len(buf.getvalue()), "content": buf.getvalue()},
             {"name": "m.keras", "size": len(model_bytes), "content": model_bytes})
    assert loader.upload(items), state.error
    assert state.model is not None and state.dataset_name == "mine" and loader.user_data is state.data
    assert loader.user_model is not None and "uploaded model" in state.status
    # A broken dataset now changes nothing.
    assert not loader.upload(({"name": "bad.npz", "size": 4, "content": b"PK\x03\x04"},))
    assert state.dataset_name == "mine" and "nothing changed" in state.error
