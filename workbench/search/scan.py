"""A sensitivity scan on a Dask cluster: one task per layer, the same rows as ``sensitivity_scan`` on one machine.

The Studio's scan runs here when a cluster is given (``DASK_SCHEDULER_ADDRESS``); the model (masks included)
reaches every worker once as ``.keras`` bytes, the images once, scattered.
"""

from __future__ import annotations

import pathlib
import tempfile
import threading
from typing import Callable

import keras
import numpy as np
import pandas as pd

from workbench.config import check_sparsity
from workbench.errors import ConfigError, ModelError
from workbench.pruning.sensitivity import DEFAULT_SPARSITIES
from workbench.pruning.wrapper import wrapped_layers
from workbench.nn.forward import layer_kind
from workbench.search import cluster
from workbench.search.trial import scan_model_layer

COLUMNS = ["layer", "sparsity", "accuracy", "params"]


def cluster_scan(model: keras.Model, eval_data, sparsities=DEFAULT_SPARSITIES, criterion: str = "magnitude",
                 train_data=None, layers=None, scheduler: str | None = None, workers: int | None = None,
                 on_point: Callable[[dict], None] | None = None,
                 stop: threading.Event | None = None) -> pd.DataFrame:
    """``sensitivity_scan`` with each layer on a Dask worker (``scheduler``: an existing cluster's address;
    None: an embedded LocalCluster on 127.0.0.1). Rows come in layer order; ``on_point`` gets each as its
    layer finishes; ``stop`` cancels the layers not yet done and returns the rows so far."""
    sparsities = [check_sparsity(s) for s in sparsities]
    if criterion == "taylor" and train_data is None:
        raise ConfigError("The Taylor criterion needs training data. Received: train_data=None")
    wrapped = [layer.name for layer in wrapped_layers(model)]
    prunable = wrapped or [layer.name for layer in model.layers if layer_kind(layer)]
    layers = list(prunable if layers is None else layers)
    unknown = sorted(set(layers) - set(prunable))
    if unknown:
        raise ConfigError(f"No prunable layer named {unknown}; the model has {sorted(prunable)}.")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "scanned.keras"
        model.save(path)
        model_bytes = path.read_bytes()
    x, y = eval_data
    arrays = {"x": np.asarray(x), "y": np.asarray(y), "x_train": None, "y_train": None}
    if criterion == "taylor":
        arrays["x_train"], arrays["y_train"] = (np.asarray(a) for a in train_data)
    from distributed import as_completed

    rows: dict[str, list] = {}
    with cluster.dask_client(workers, scheduler) as client:
        model_future = client.scatter(model_bytes, broadcast=True)
        arrays_future = client.scatter(arrays, broadcast=True)
        futures = {client.submit(scan_model_layer, model_future, arrays_future, name, sparsities, criterion,
                                 pure=False): name for name in layers}
        done = as_completed(futures)
        for future in done:
            if stop is not None and stop.is_set():
                for other in futures:
                    other.cancel()
                break
            try:
                found = future.result()
            except Exception as exc:  # a worker's failure, named with its layer
                for other in futures:
                    other.cancel()
                raise ModelError(f"The sensitivity scan of layer {futures[future]!r} failed on the cluster: "
                                 f"{type(exc).__name__}: {exc}") from None
            rows[futures[future]] = found
            for row in found:
                if on_point is not None:
                    on_point(row)
    return pd.DataFrame([row for name in layers for row in rows.get(name, [])], columns=COLUMNS)
