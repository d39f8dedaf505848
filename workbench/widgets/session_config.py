"""Saving and loading a session's settings as JSON: a mixin of SessionState (state.py).

A configuration names the model, the criterion and mode, every layer's sparsity (or threshold) and bits, and
the fine-tune settings. Loading validates all of it first, then applies it all at once, or changes nothing.
"""

from __future__ import annotations

import json

from workbench.config import CRITERIA, check_bits, check_sparsity
from workbench.errors import ConfigError, WorkbenchError
from workbench.export.tflite import check_target

CONFIG_KEYS = ("model", "dataset", "mode", "criterion", "global_sparsity", "layer_sparsity", "layer_threshold",
               "weight_bits", "activation_bits", "schedule", "epochs", "learning_rate", "export_target")


class ConfigMixin:
    """get_config / to_json / load_config for SessionState."""

    # ----- configuration -----------------------------------------------------------------------
    def get_config(self) -> dict:
        return {"model": self.model_name, "dataset": self.dataset_name, "mode": self.mode,
                "criterion": self.criterion, "global_sparsity": self.global_sparsity,
                "layer_sparsity": dict(self.layer_sparsity), "layer_threshold": dict(self.layer_threshold),
                "weight_bits": dict(self.weight_bits), "activation_bits": self.activation_bits,
                "schedule": self.schedule, "epochs": self.epochs, "learning_rate": self.learning_rate,
                "export_target": self.export_target}

    def to_json(self) -> str:
        return json.dumps(self.get_config(), indent=2, sort_keys=True)

    def load_config(self, config) -> bool:
        """Apply a saved configuration (dict or JSON text) all at once, or change nothing."""
        try:
            self._guard()
            config = self._validated(config)
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        snapshot = self.model.get_weights()
        before = {k: getattr(self, k) for k in ("criterion", "mode", "layer_sparsity", "layer_threshold",
                                                "weight_bits", "activation_bits", "global_sparsity",
                                                "export_target")}
        try:
            self.criterion, self.mode = config["criterion"], config["mode"]
            if not self.set_training(config["schedule"], config["epochs"], config["learning_rate"]):
                raise ConfigError(self.error)
            self.activation_bits = config["activation_bits"]
            self.export_target = config["export_target"]
            self.weight_bits = {**self.weight_bits, **config["weight_bits"]}
            for name in self.layers:
                ok = (self.set_layer_threshold(name, config["layer_threshold"].get(name, 0.0))
                      if config["mode"] == "threshold"
                      else self.set_layer_sparsity(name, config["layer_sparsity"].get(name, 0.0)))
                if not ok:
                    raise ConfigError(self.error)
            self.global_sparsity = config["global_sparsity"]
        except WorkbenchError as exc:
            self.model.set_weights(snapshot)
            for key, value in before.items():
                setattr(self, key, value)
            self._refresh()
            return self._refuse(f"Configuration not loaded: {exc}")
        self.error = ""
        self.status = "configuration loaded"
        return True

    def _validated(self, config) -> dict:
        if isinstance(config, (bytes, bytearray)):
            config = config.decode("utf-8", errors="replace")
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"The configuration is not valid JSON: {exc}.") from None
        if not isinstance(config, dict):
            raise ConfigError(f"A configuration must be a JSON object. Received: {type(config).__name__}")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"Unknown configuration keys {unknown}; expected {list(CONFIG_KEYS)}.")
        if config.get("model", self.model_name) != self.model_name:
            raise ConfigError(f"This configuration is for model {config['model']!r}; the session has "
                              f"{self.model_name!r}. Load that model first.")
        merged = {**self.get_config(), **config}
        for field in ("layer_sparsity", "layer_threshold", "weight_bits"):
            if not isinstance(merged[field], dict):
                raise ConfigError(f"{field} must map layer names to values. Received: {merged[field]!r}")
            extra = sorted(set(merged[field]) - set(self.layers))
            if extra:
                raise ConfigError(f"{field} names layers {extra} that model {self.model_name!r} does not have.")
        for name, value in merged["layer_sparsity"].items():
            check_sparsity(value, f"layer_sparsity[{name!r}]")
        for name, value in merged["weight_bits"].items():
            check_bits(value, f"weight_bits[{name!r}]")
        check_bits(merged["activation_bits"], "activation_bits")
        check_target(merged["export_target"])
        check_sparsity(merged["global_sparsity"], "global_sparsity")
        if merged["mode"] not in ("sparsity", "threshold") or merged["criterion"] not in CRITERIA:
            raise ConfigError(f"mode/criterion not recognised. Received: mode={merged['mode']!r}, "
                              f"criterion={merged['criterion']!r}")
        return merged
