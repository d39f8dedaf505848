"""Interactive latency of the widget layer on LeNet-5: one slider move, end to end.

A move re-applies the masks, redraws the histogram, kernel heatmap and overview, re-estimates
accuracy on a fixed evaluation subset and the live size estimate. Writes
bench/results/widget_latency.json and prints p50/p95.

    .venv/bin/python bench/widget_latency.py [--moves 60] [--eval-size 500]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np

from workbench.baselines import get_baseline
from workbench.widgets import Dashboard, SessionState

RESULTS = pathlib.Path(__file__).with_name("results")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moves", type=int, default=60)
    parser.add_argument("--eval-size", type=int, default=500)
    args = parser.parse_args()
    model, data, origin = get_baseline("lenet5", "mnist")
    board = Dashboard(SessionState(model, data, "lenet5", eval_size=args.eval_size))
    rng = np.random.default_rng(0)
    layers = board.state.layers
    # Warm-up: first scores and first TF graph calls are not what a user feels on later moves.
    for name in layers:
        board.controls.layer_sliders[name].value = 0.1
    times, per_layer = [], {name: [] for name in layers}
    for i in range(args.moves):
        name = layers[i % len(layers)]
        board.state.select_layer(name)
        value = float(np.round(rng.uniform(0.05, 0.95), 2))
        if value == board.controls.layer_sliders[name].value:
            value = round(value + 0.01, 2)
        start = time.perf_counter()
        board.controls.layer_sliders[name].value = value
        elapsed = time.perf_counter() - start
        assert board.state.layer_sparsity[name] == value, board.state.error
        times.append(elapsed)
        per_layer[name].append(elapsed)
    result = {
        "what": "slider move -> masks, histogram, heatmap, overview, accuracy on eval subset, size estimate",
        "model": "lenet5", "baseline": origin, "eval_size": args.eval_size, "moves": args.moves,
        "p50_s": float(np.percentile(times, 50)), "p95_s": float(np.percentile(times, 95)),
        "max_s": float(np.max(times)),
        "per_layer_p50_s": {k: float(np.percentile(v, 50)) for k, v in per_layer.items()},
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "widget_latency.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
