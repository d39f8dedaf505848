"""sensitivity_scan(): accuracy against sparsity for each layer pruned alone (Han et al. 2015, Distiller)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from workbench.config import check_sparsity
from workbench.errors import ConfigError
from workbench.pruning import masks
from workbench.pruning.api import layer_scores, wrap_model
from workbench.pruning.wrapper import PruneWrapper, wrapped_layers
from workbench.nn.evaluate import accuracy

DEFAULT_SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)


def sensitivity_scan(model: keras.Model, eval_data, sparsities=DEFAULT_SPARSITIES, criterion: str = "magnitude",
                     train_data=None, layers=None, on_point=None, stop=None) -> pd.DataFrame:
    """Prune each layer alone to each sparsity and measure accuracy; the model is left unchanged.

    Args:
        model: a trained model (plain or wrapped).
        eval_data: (x, y) used to measure accuracy.
        sparsities: fractions in [0, 1).
        criterion: "magnitude" or "taylor" (needs ``train_data``).
        layers: layer names to scan (default: every prunable layer).
        on_point: called with each result row as it is measured.
        stop: a threading.Event; when set, the scan ends early with the rows so far.

    Returns:
        DataFrame with columns layer, sparsity, accuracy, params.
    """
    sparsities = [check_sparsity(s) for s in sparsities]
    work = model if any(isinstance(layer, PruneWrapper) for layer in model.layers) else wrap_model(model)
    by_name = {layer.name: layer for layer in wrapped_layers(work)}
    layers = list(by_name) if layers is None else list(layers)
    unknown = set(layers) - set(by_name)
    if unknown:
        raise ConfigError(f"No prunable layer named {sorted(unknown)}; the model has {sorted(by_name)}.")
    scores = layer_scores(work, criterion, train_data)
    saved = {name: layer.get_mask() for name, layer in by_name.items()}
    x, y = eval_data
    rows = []
    try:
        for name in layers:
            layer = by_name[name]
            for s in sparsities:
                if stop is not None and stop.is_set():
                    return pd.DataFrame(rows, columns=["layer", "sparsity", "accuracy", "params"])
                base = saved[name]
                mask = masks.mask_for_sparsity(np.where(base > 0, scores[name], -1.0), max(s, masks.sparsity_of(base)))
                layer.set_mask(mask)
                row = {"layer": name, "sparsity": s, "accuracy": accuracy(work, x, y), "params": int(mask.size)}
                rows.append(row)
                if on_point is not None:
                    on_point(row)
            layer.set_mask(saved[name])
    finally:
        for name, mask in saved.items():
            by_name[name].set_mask(mask)
    return pd.DataFrame(rows, columns=["layer", "sparsity", "accuracy", "params"])
