from __future__ import annotations

import pytest

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError


@pytest.mark.parametrize("cls, kwargs", [
    (PruneConfig, {"sparsity": 0.75, "target": "per_layer", "criterion": "taylor", "layer_sparsity": {"fc1": 0.9},
                   "schedule": "polynomial", "exclude": ("conv1",)}),
    (QuantConfig, {"weight_bits": 4, "activation_bits": 6, "layer_weight_bits": {"fc1": 3}}),
    (TrainConfig, {"epochs": 3, "learning_rate": 0.01, "limit": 100}),
])
def test_configs_round_trip_through_dict_and_json(cls, kwargs):
    config = cls(**kwargs)
    assert cls.from_config(config.get_config()) == config
    assert cls.from_json(config.to_json()) == config


@pytest.mark.parametrize("sparsity", [1.0, 1.5, -0.1, float("nan"), "a lot", None])
def test_sparsity_outside_unit_interval_is_refused(sparsity):
    with pytest.raises(ConfigError, match="Received: sparsity="):
        PruneConfig(sparsity=sparsity)


@pytest.mark.parametrize("bits", [0, 1, 9, 16, 4.5, True, "8"])
def test_bits_outside_2_to_8_are_refused(bits):
    with pytest.raises(ConfigError, match="weight_bits"):
        QuantConfig(weight_bits=bits)
    with pytest.raises(ConfigError, match="activation_bits"):
        QuantConfig(activation_bits=bits)


def test_per_layer_values_are_checked_too():
    with pytest.raises(ConfigError, match=r"layer_sparsity\['fc1'\]"):
        PruneConfig(layer_sparsity={"fc1": 1.0})
    with pytest.raises(ConfigError, match=r"layer_weight_bits\['fc1'\]"):
        QuantConfig(layer_weight_bits={"fc1": 12})
    with pytest.raises(ConfigError, match="layer_threshold"):
        PruneConfig(target="threshold", layer_threshold={"fc1": -1})


def test_unknown_choices_and_keys_are_refused():
    with pytest.raises(ConfigError, match="criterion"):
        PruneConfig(criterion="random")
    with pytest.raises(ConfigError, match="Unknown PruneConfig keys"):
        PruneConfig.from_config({"sparsity": 0.5, "sparsty": 0.2})
    with pytest.raises(ConfigError, match="malformed"):
        QuantConfig.from_json("{not json")
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig(learning_rate=0)
