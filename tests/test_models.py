from __future__ import annotations

import io

import keras
import numpy as np
import pytest

from workbench.errors import ModelError
from workbench.loading import load_user_model
from workbench.models import build_model, lenet5, lenet5_classic, mobilenet_v1


def test_lenet5_is_the_431k_caffe_model():
    model = lenet5()
    assert model.count_params() == 431080 and model.count_params() * 4 == 1724320
    assert [layer.name for layer in model.layers] == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2"]
    assert lenet5_classic().count_params() == 61706


def test_mobilenet_v1_sizes():
    big = mobilenet_v1(alpha=1.0, input_shape=(224, 224, 3), classes=1000)
    assert big.count_params() == 4253864  # 17.0 MB fp32: the paper's 16.9 MB model
    small = mobilenet_v1(alpha=0.25, input_shape=(28, 28, 1), classes=10)
    assert small.get_layer("resize").output.shape[1:3] == (32, 32)
    assert small(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
    with pytest.raises(ModelError, match="alpha"):
        mobilenet_v1(alpha=0.3)
    with pytest.raises(ModelError, match="Unknown model"):
        build_model("resnet")


def _saved_bytes(model, tmp_path) -> bytes:
    path = tmp_path / "m.keras"
    model.save(path)
    return path.read_bytes()


def test_user_model_loads_in_safe_mode(tmp_path):
    data = _saved_bytes(lenet5(), tmp_path)
    model = load_user_model(data)
    assert model.count_params() == 431080


def test_lambda_layers_are_refused_not_executed(tmp_path):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    with pytest.raises(ModelError, match="safe mode"):
        load_user_model(_saved_bytes(model, tmp_path))


def test_unsupported_layers_are_named(tmp_path):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    with pytest.raises(ModelError, match=r"ln \(LayerNormalization\)"):
        load_user_model(_saved_bytes(model, tmp_path))


def test_corrupt_oversized_and_non_image_models(tmp_path):
    with pytest.raises(ModelError, match="not a .keras archive"):
        load_user_model(b"definitely not a zip")
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", "{broken")
    with pytest.raises(ModelError, match="Cannot load"):
        load_user_model(buf.getvalue())
    with pytest.raises(ModelError, match="limit"):
        load_user_model(b"0" * 11, max_bytes=10)
    dense = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="expected images"):
        load_user_model(_saved_bytes(dense, tmp_path))
