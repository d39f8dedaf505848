"""Run benchmark rows over several seeds and write bench/results/<row>.json, RESULTS.md and README's table.

    .venv/bin/python bench/run.py [ROW ...] [--seeds 0,1,2] [--limit N] [--table-only]

Each seed runs the pipeline's stages (workbench.stages): the baseline trains to convergence
(early stopping on the validation split), then prune, fine-tune, QAT, export, and one final
measurement on the test split with 95% intervals and McNemar's paired test. Rows report the
mean and standard deviation over the seeds. Seed 0 also exports both targets ("size": INT4 packing; "speed": every
weight int8) and measures each one's accuracy, latency and throughput beside the fp32 baseline's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import sys
import time


HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rows import ROWS, SEEDS  # noqa: E402
from tables import RESULTS, goal_met, summarise, write_all  # noqa: E402

import workbench as wb  # noqa: E402
from workbench import stages  # noqa: E402


def load_row_data(spec: dict, limit: int = 0) -> wb.Dataset:
    data = wb.load_dataset(spec["dataset"])
    limit = limit or spec.get("limit", 0)
    return data.subset(train=limit) if limit else data


def run_seed(spec: dict, data: wb.Dataset, seed: int, speed: bool) -> dict:
    """One seed of a row: every stage, then the test split once."""
    started = time.perf_counter()
    training = {name: wb.TrainConfig(seed=seed, **spec[name]) for name in ("baseline", "finetune", "qat")}
    run = stages.start_run(spec["model"], data, wb.PruneConfig(**spec["prune"]), wb.QuantConfig(**spec["quant"]),
                           training, model_kwargs=spec["model_kwargs"])
    stages.run_all(run)
    result = {"seed": seed, "accuracy": {"baseline": run.test["baseline"]["accuracy"],
                                         "int8": run.test["int8"]["accuracy"]},
              "test": run.test, "validation": run.validation, "delta_points": run.test["delta"]["delta_points"],
              "sizes": {k: v for k, v in run.sizes.items() if k != "tensors"},
              "compute": {k: v for k, v in run.reports["export"]["compute"].items() if k != "ops"},
              "sparsity": run.reports["prune"]["sparsity"],
              "baseline_training": {k: v for k, v in run.reports["baseline"].items() if k != "history"},
              "seconds": {**run.seconds, "total": time.perf_counter() - started}}
    if speed:
        result["speed"] = export_targets(run)
        result["tflite_fp32_bytes"] = len(run.fp32_tflite)  # made once by measure_speed, shared by both targets
    return result


def export_targets(run: stages.Run) -> dict:
    """Both export targets of one seed's QAT model, side by side: each artifact's bytes, its accuracy (validation,
    and test once) and its speed beside the fp32 baseline's (stages.measure_speed: batch-1 latency p50/p95 over
    200 runs after warm-up, batch-64 throughput, one thread)."""
    out = {}
    for target in ("size", "speed"):
        other = run if target == run.export_target else dataclasses.replace(
            run, export_target=target, micro=False, validation=dict(run.validation), test={}, sizes={},
            seconds={}, reports=dict(run.reports))
        if other is not run:
            stages.export(other)
            stages.measure(other, "test")
        out[target] = {"tflite_bytes": other.sizes["tflite_bytes"], "gzip_bytes": other.sizes["gzip_bytes"],
                       "validation_int8": other.validation["int8"], "test_int8": other.test["int8"]["accuracy"],
                       **stages.measure_speed(other)}
    return out


def earlier_runs(name: str, seeds, limit: int) -> tuple[list, float]:
    """Seeds an interrupted run of this row already finished under the same spec and rules (for ``--resume``)."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return [], 0.0
    old = json.loads(path.read_text())
    same = (old.get("rules") == "v2" and old.get("spec") == json.loads(json.dumps(ROWS[name]))
            and old.get("limit") == (limit or ROWS[name].get("limit", 0)))
    if not same:
        print(f"  {name}: the stored result has other settings; running every seed again", flush=True)
        return [], 0.0
    rule = wb.TrainConfig(**ROWS[name]["baseline"]).rule()  # how the baselines trained (changed on 2026-12-01)
    wanted = [r for r in old["runs"] if r["seed"] in seeds]
    runs = [r for r in wanted if r["baseline_training"].get("rule") == rule]
    if len(runs) < len(wanted):
        print(f"  {name}: seeds whose baseline trained under another rule run again", flush=True)
    return runs, float(old.get("seconds_total", 0.0)) if runs else 0.0


def run_row(name: str, seeds=SEEDS, limit: int = 0, on_seed=None, resume: bool = False, speed: bool = True) -> dict:
    """Every seed of a row; ``on_seed(result)`` gets the row so far after each seed (written to disk by main).

    With ``resume``, seeds already in bench/results/<row>.json (same spec, limit and rules) are kept, not re-run.
    """
    spec = ROWS[name]
    data = load_row_data(spec, limit)
    runs, before = earlier_runs(name, seeds, limit) if resume else ([], 0.0)
    started = time.perf_counter() - before
    result = {}
    for seed in seeds:
        done = [r for r in runs if r["seed"] == seed]
        if done:
            print(f"  {name} seed {seed}: kept from the earlier run", flush=True)
            continue
        runs.append(run_seed(spec, data, seed, speed=speed and not any("speed" in r for r in runs)))
        runs.sort(key=lambda r: list(seeds).index(r["seed"]))
        new = next(r for r in runs if r["seed"] == seed)
        print(f"  {name} seed {seed}: {new['sizes']['compression_ratio']:.1f}x, int8 "
              f"{new['accuracy']['int8']:.2%} vs baseline {new['accuracy']['baseline']:.2%} "
              f"({new['seconds']['total']:.0f} s)", flush=True)
        result = row_result(name, spec, data, limit, seeds, runs, started)
        if on_seed is not None:
            on_seed(result)
    return result or row_result(name, spec, data, limit, seeds, runs, started)


def row_result(name, spec, data, limit, seeds, runs, started) -> dict:
    result = {"row": name, "spec": spec, "dataset": data.summary(), "limit": limit or spec.get("limit", 0),
              "seeds": [r["seed"] for r in runs], "seeds_planned": list(seeds), "complete": len(runs) == len(seeds),
              "runs": runs, "summary": summarise(runs), "seconds_total": time.perf_counter() - started,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "rules": "v2"}
    result["goal_met"] = goal_met(result, spec["goal"])
    return result


def write_result(result: dict) -> None:
    path = RESULTS / f"{result['row']}.json"
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="*", default=list(ROWS))
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated seeds")
    parser.add_argument("--limit", type=int, default=0, help="training images per row (0 = the row's own)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the seeds an interrupted run of the row already wrote; run the rest")
    parser.add_argument("--table-only", action="store_true", help="only rewrite RESULTS.md and README's table")
    parser.add_argument("--no-speed", action="store_true",
                        help="do not time the artifacts (for seeds run beside other work: another process times them)")
    args = parser.parse_args()
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {list(ROWS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    RESULTS.mkdir(exist_ok=True)
    for name in [] if args.table_only else args.rows:
        result = run_row(name, seeds, args.limit, resume=args.resume, speed=not args.no_speed,
                         on_seed=lambda partial: (write_result(partial), write_all()))
        s = result["summary"]
        print(f"{name}: {s['ratio']['mean']:.1f}x at {s['delta_points']['mean']:+.2f} ± "
              f"{s['delta_points']['std']:.2f} points over {len(seeds)} seeds "
              f"({result['seconds_total']:.0f} s)", flush=True)
    write_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
