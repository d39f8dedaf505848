"""Trained baseline models: shipped with the package, cached on disk, or trained once and cached.

Apps open on a trained model without training at page load: a baseline is looked up in the
package (``workbench/data/baselines``), then in the cache (``$WORKBENCH_CACHE`` or
``~/.cache/workbench/baselines``); only when neither has it is it trained and cached.
"""

from __future__ import annotations

import os
import pathlib
import re

import keras

from workbench.config import TrainConfig
from workbench.data import Dataset, load_dataset
from workbench.io import atomic_path
from workbench.loading import load_user_model

PACKAGED = pathlib.Path(__file__).with_name("data") / "baselines"


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("WORKBENCH_CACHE") or pathlib.Path.home() / ".cache" / "workbench") / "baselines"


def baseline_key(model_name: str, data: Dataset) -> str:
    """File stem naming the model, the dataset and the source's size (so a different source retrains)."""
    source = "bundled" if data.source.startswith("bundled") else "data"
    # The training count changes with the validation split, so baselines that saw validation images never match.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{model_name}-{data.name}-{source}-t{len(data.y_train)}")


def find_baseline(model_name: str, data: Dataset) -> pathlib.Path | None:
    key = baseline_key(model_name, data)
    for folder in (PACKAGED, cache_dir()):
        path = folder / f"{key}.keras"
        if path.is_file():
            return path
    return None


def get_baseline(model_name: str = "lenet5", dataset="mnist", train: TrainConfig | None = None,
                 on_record=None, stop=None, allow_training: bool = True) -> tuple[keras.Model, Dataset, str]:
    """(trained model, dataset, where the model came from: 'packaged', 'cache' or 'trained')."""
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    path = find_baseline(model_name, data)
    if path is not None:
        origin = "packaged" if path.parent == PACKAGED else "cache"
        return load_user_model(path), data, f"{origin} ({path.name})"
    if not allow_training:
        raise FileNotFoundError(f"No trained {model_name} for {data.name} in {PACKAGED} or {cache_dir()}.")
    from workbench import stages

    run = stages.start_run(model_name, data, training={"baseline": train} if train else None)
    stages.train_baseline(run, on_record=on_record, stop=stop)
    if run.stopped:
        raise InterruptedError("Training the baseline was stopped; nothing was cached.")
    save_baseline(run.baseline, cache_dir() / f"{baseline_key(model_name, data)}.keras")
    return run.baseline, data, "trained"


def save_baseline(model: keras.Model, path: pathlib.Path) -> pathlib.Path:
    """Save weights and architecture only (no optimizer state), atomically."""
    plain = model.__class__.from_config(model.get_config())  # uncompiled: no optimizer variables
    plain.set_weights(model.get_weights())
    with atomic_path(path, suffix=".keras") as tmp:
        plain.save(tmp)
    return path
