"""Trials per hour of one search with 1 and with 2 Dask workers, side by side in one run, and the client's
cost per trial (Optuna's ask + tell on a journal file) as the study grows: where adding machines stops
paying. Writes bench/results/search_scaling.json (RESULTS.md via bench/tables.py).

    .venv/bin/python bench/search_scaling.py [--trials 8]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tables import RESULTS, write_all  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.search import SearchSpace  # noqa: E402

SPACE = SearchSpace(finetune_epochs=(2, 2), qat_epochs=1)


def client_cost(sizes=(50, 200, 400)) -> dict:
    """Seconds of one ask (TPE, multivariate, this space's 11 parameters for LeNet-5) and one tell, on a
    journal file, after ``n`` finished trials."""
    import optuna
    from workbench.search.engine import open_study

    layers = ["conv1", "conv2", "fc1", "fc2"]
    rng = np.random.default_rng(0)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        study, _ = open_study(str(pathlib.Path(tmp) / "j.log"), "cost", 0, resume=False)
        done = 0
        for n in sizes:
            while done < n:
                trial = study.ask()
                SPACE.sample(trial, layers)
                study.tell(trial, [float(rng.integers(1e4, 1e6)), float(rng.uniform(0.8, 1.0))])
                done += 1
            start = time.perf_counter()
            trial = study.ask()
            SPACE.sample(trial, layers)
            asked = time.perf_counter() - start
            start = time.perf_counter()
            study.tell(trial, [5e4, 0.9])
            out[str(n)] = {"ask_s": asked, "tell_s": time.perf_counter() - start}
            done += 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    data = wb.load_dataset("mnist")
    from workbench import stages
    from workbench.metrics.size import fp32_bytes

    run = stages.start_run("lenet5", data, training={"baseline": wb.TrainConfig(epochs=5, seed=0)})
    stages.train_baseline(run)
    runs = []
    for workers in (1, 2):
        report = wb.search(run.baseline, data, max_loss=1.0, trials=args.trials, workers=workers, space=SPACE,
                           warm_start=False, final_seeds=(), early_stopping=False)
        seconds = report.seconds["search"]
        per_trial = [t for t in report.trials["seconds"].dropna()]
        runs.append({"workers": workers, "tf_threads": max(1, (os.cpu_count() or 1) // workers),
                     "trials": int(report.counts["total"]), "seconds": seconds,
                     "trials_per_hour": 3600.0 * report.counts["total"] / seconds,
                     "trial_seconds_mean": float(np.mean(per_trial)), "counts": report.counts})
        print(runs[-1], flush=True)
    cost = client_cost()
    baseline_kb = fp32_bytes(run.baseline) / 1024
    result = {"description": f"LeNet-5 on {data.summary()['source'].split('(')[0].strip()}, {args.trials} trials, "
                             f"2 fine-tune epochs + 1 QAT epoch each, no warm start, no early stopping",
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "runs": runs, "client_cost": cost,
              "baseline_fp32_kb": baseline_kb}
    path = RESULTS / "search_scaling.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True))
    write_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
