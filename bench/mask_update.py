"""What one mask update of the polynomial (AGP) schedule costs, and what the partition saved over a sort.

During pruning fine-tuning, ``PruningCallback`` re-ranks every prunable weight of the model every ``frequency``
steps (``prune_to_fraction``: magnitude scores, one mask per layer, masks assigned). This times that whole update
on the pruning-wrapped model, alternating in rounds between the two ways of finding each layer's lowest weights:

- ``partition``: ``masks.lowest``, an O(n) partition (what the workbench uses since 2026-12-01);
- ``stable_sort``: a stable argsort of each layer's scores (``masks.Ranking``, what it used before; the same masks).

It also states how many updates one epoch of the bench row makes, so the per-epoch cost sits beside the epoch.

    .venv/bin/python bench/mask_update.py [--model mobilenet_v1] [--rounds 5] [--images 18000]

Writes bench/results/mask_update_<model>.json. Run it alone: these are wall times (the ratio is what counts).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODELS = {"lenet5": {}, "mobilenet_v1": {"alpha": 1.0, "image_size": 32}}
ROW = {"lenet5": "lenet5-mnist", "mobilenet_v1": "mobilenet-fashion"}


def measure(model_name: str, rounds: int, images: int, batch: int = 128) -> dict:
    import sys

    sys.path.insert(0, str(HERE))
    from rows import ROWS

    import workbench as wb
    from workbench.models import build_model
    from workbench.pruning import api, masks
    from workbench.pruning.callbacks import prune_to_fraction, schedule_for

    spec = ROWS[ROW[model_name]]
    config = wb.PruneConfig(**spec["prune"])
    model = api.wrap_model(build_model(model_name, (28, 28, 1), 10, **MODELS[model_name]), exclude=config.exclude)
    weights = sum(int(np.prod(layer.mask.shape)) for layer in api.wrapped_layers(model))
    partition = masks.mask_for_sparsity

    def stable_sort(scores, sparsity):
        return masks.Ranking(scores).mask(sparsity)

    variants = {"partition": partition, "stable_sort": stable_sort}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    fractions = np.linspace(0.2, 1.0, 5)
    try:
        for _ in range(rounds):
            for name, fn in variants.items():
                masks.mask_for_sparsity = fn
                for fraction in fractions:
                    t0 = time.perf_counter()
                    prune_to_fraction(model, config, float(fraction))
                    seconds[name].append(time.perf_counter() - t0)
        same = True
        for fraction in fractions:  # the two ways give the same masks
            masks.mask_for_sparsity = partition
            prune_to_fraction(model, config, float(fraction))
            a = api.get_masks(model)
            masks.mask_for_sparsity = stable_sort
            prune_to_fraction(model, config, float(fraction))
            b = api.get_masks(model)
            same = same and all(np.array_equal(a[k], b[k]) for k in a)
    finally:
        masks.mask_for_sparsity = partition
    steps = int(np.ceil(images / batch))
    epochs = spec["finetune"]["epochs"]
    schedule = schedule_for(config, epochs * steps)
    updates = sum(schedule.should_update(step) for step in range(epochs * steps))
    median = {name: float(np.median(v)) for name, v in seconds.items()}
    return {"model": model_name, "row": ROW[model_name], "prunable_weights": weights, "rounds": rounds,
            "updates_timed": {k: len(v) for k, v in seconds.items()}, "median_seconds": median,
            "p90_seconds": {k: float(np.percentile(v, 90)) for k, v in seconds.items()},
            "speedup": median["stable_sort"] / median["partition"], "same_masks": bool(same),
            "row_updates": {"images": images, "batch": batch, "epochs": epochs, "frequency": config.frequency,
                            "updates": int(updates),
                            "seconds_per_epoch": {k: v * updates / epochs for k, v in median.items()}},
            "machine": f"{platform.machine()}, {os.cpu_count()} cores"}


def mask_update_lines(result: dict | None) -> list[str]:
    if not result:
        return []
    r, m = result["row_updates"], result["median_seconds"]
    return ["", f"### One mask update of the polynomial schedule ({result['model']}, `bench/mask_update.py`)", "",
            f"Re-ranking all {result['prunable_weights']:,} prunable weights and assigning the masks, median of "
            f"{result['updates_timed']['partition']} updates per way, alternating: **{m['partition'] * 1e3:.0f} ms** "
            f"with the O(n) partition, {m['stable_sort'] * 1e3:.0f} ms with a stable sort "
            f"({result['speedup']:.1f}× faster; the same masks: {'yes' if result['same_masks'] else 'NO'}). "
            f"The `{result['row']}` row makes {r['updates']} updates over {r['epochs']} epochs of "
            f"{r['images']:,} images (every {r['frequency']} steps): "
            f"{r['seconds_per_epoch']['partition']:.1f} s per epoch against "
            f"{r['seconds_per_epoch']['stable_sort']:.1f} s."]


def load(model_name: str = "mobilenet_v1") -> dict | None:
    path = RESULTS / f"mask_update_{model_name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mobilenet_v1", choices=list(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=18000,
                        help="training images of one epoch of the row (mobilenet-fashion: 20,000 less the validation tenth)")
    args = parser.parse_args()
    result = measure(args.model, args.rounds, args.images)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"mask_update_{args.model}.json"
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
    os.replace(tmp, path)
    print("\n".join(mask_update_lines(result)))


if __name__ == "__main__":
    main()
