"""A row's baseline, trained once per model, data, rules and seed, and kept in bench/cache/ (not committed).

The auto rows start their search from it: the search's budget is for the search (sensitivity scan,
trials, the pick's test seeds), and the baseline's training time is reported beside it. A later
row with the same model, data, baseline settings and seed loads it instead of training it again; the
key covers everything that makes two baselines the same network, so a change to any of them trains
a new one. Loading uses the workbench's safe loader (Keras safe_mode, no user code).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import time

HERE = pathlib.Path(__file__).resolve().parent
CACHE = HERE / "cache" / "baselines"
RULES = "v2"  # bench/tables.py: early stopping on the stratified, seeded validation split


def cache_key(spec: dict, data, seed: int) -> str:
    """The training rule in words is part of the key: a change to how the baseline trains (on 2026-12-01, no
    learning-rate cut before min_epochs) trains a new one."""
    from workbench.config import TrainConfig

    what = {"model": spec["model"], "model_kwargs": spec["model_kwargs"], "baseline": spec["baseline"],
            "seed": seed, "data": data.summary(), "rules": RULES, "rule": TrainConfig(**spec["baseline"]).rule()}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def shared_baseline(spec: dict, data, seed: int = 0, cache: pathlib.Path = CACHE):
    """(trained keras.Model, info): from the cache, or trained here with the pipeline's baseline stage and
    stored (all-or-nothing). ``info`` holds the training's figures and whether it came from the cache."""
    import workbench as wb
    from workbench import stages
    from workbench.loading import load_user_model

    path = cache / f"{spec['model']}-{data.name}-seed{seed}-{cache_key(spec, data, seed)}.keras"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        started = time.perf_counter()
        model = load_user_model(path.read_bytes(), name=path.name, max_bytes=path.stat().st_size)
        info = json.loads(meta.read_text())
        return model, {**info, "cached": True, "load_seconds": time.perf_counter() - started, "file": path.name}
    run = stages.start_run(spec["model"], data, training={"baseline": wb.TrainConfig(seed=seed, **spec["baseline"])},
                           model_kwargs=spec["model_kwargs"])
    stages.train_baseline(run)
    if run.stopped:
        raise InterruptedError("the baseline's training was stopped")
    info = {"seconds": run.seconds["baseline"], "validation": run.validation["baseline"], "seed": seed,
            **{k: v for k, v in run.reports["baseline"].items() if k != "history"}}
    cache.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part.keras")
    run.baseline.save(part)
    meta_part = meta.with_name(meta.name + ".part")
    meta_part.write_text(json.dumps(info, indent=1, sort_keys=True))
    os.replace(part, path)
    os.replace(meta_part, meta)
    return run.baseline, {**info, "cached": False, "file": path.name}
