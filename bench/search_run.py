"""Run an automatic-search row and write bench/results/<row>.json (then RESULTS.md via bench/tables.py).

    .venv/bin/python bench/search_run.py auto-lenet5-mnist [--minutes M] [--limit N]

``--minutes`` and ``--limit`` shrink a row for a quick look; such results are marked ``"reduced"``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rows import ROWS  # noqa: E402
from search_rows import AUTO_ROWS  # noqa: E402
from shared_baseline import shared_baseline  # noqa: E402
from tables import RESULTS, write_all  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.search import SearchSpace  # noqa: E402


def _commit() -> str:
    """The code this row ran (with '+changes' when the work tree differed from it)."""
    import subprocess

    root = HERE.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "workbench", "bench"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def run_auto_row(name: str, minutes: float | None = None, limit: int = 0, out_dir=None) -> dict:
    spec = AUTO_ROWS[name]
    budget = minutes or spec["budget_minutes"]
    data = wb.load_dataset(spec["dataset"])
    limit = limit or spec.get("limit", 0)
    if limit:
        data = data.subset(train=limit)
    model, baseline = shared_baseline(spec, data, seed=0)
    print(f"  baseline: {'from the cache' if baseline['cached'] else 'trained'} ({baseline['file']}), "
          f"{baseline['seconds']:.0f} s to train, validation {baseline['validation']:.2%}", flush=True)
    started = time.perf_counter()  # the budget is the search's: scan, trials and the pick's test seeds
    # a hand-tuned row's recipe to start from: its pruning, quantization and fine-tune settings
    start_from = [{k: ROWS[row][k] for k in ("prune", "quant", "finetune")} for row in spec.get("start_from", [])]
    report = wb.search(model, data, max_loss=spec["max_loss"], trials=None,
                       minutes=budget, workers=spec["workers"], fidelity=spec.get("fidelity", 1.0),
                       scan_images=spec.get("scan_images"), start_from=start_from or None,
                       space=SearchSpace(**spec["space"]), final_seeds=(0, 1, 2), out_dir=out_dir,
                       on_trial=lambda n, rec, frame: print(
                           f"  trial {n}: {rec['state']}"
                           + (f", {rec['values'][0]:,} B, val {rec['values'][1]:.2%}" if rec.get("values") else "")
                           + (f" ({rec['error']})" if rec.get("error") else ""), flush=True),
                       on_status=lambda text: print(f"  {text}", flush=True))
    seconds = time.perf_counter() - started
    result = {"row": name, "spec": spec, "dataset": data.summary(), "limit": limit,
              # A shorter budget is within the row's cap; fewer training images change the row.
              "reduced": bool((minutes and minutes > spec["budget_minutes"]) or (limit and limit != spec.get("limit", 0))),
              "budget_minutes": budget, "seconds_total": seconds, "budget_kept": seconds <= budget * 60,
              "baseline": baseline,
              "search": report.to_dict(),
              "trials_per_hour": 3600.0 * report.counts["total"] / max(1e-9, report.seconds.get("search", 0.0)),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "rules": "v2", "commit": _commit()}
    pick = report.pick
    result["goal_met"] = bool(pick and pick.get("test") and pick["test"]["ratio"]["mean"] >= spec["goal"]["ratio"]
                              and pick["test"]["delta_points"]["mean"] >= -spec["goal"]["max_loss_points"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="+", choices=list(AUTO_ROWS))
    parser.add_argument("--minutes", type=float, default=None,
                        help="the row's wall-time budget (at most the row's own cap; more marks the result reduced)")
    parser.add_argument("--limit", type=int, default=0, help="training images (marks the result reduced)")
    args = parser.parse_args()
    for name in args.rows:
        result = run_auto_row(name, args.minutes, args.limit)
        path = RESULTS / f"{name}.json"
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
        os.replace(tmp, path)
        print(f"{name}: {json.dumps(result['search']['pick'] and result['search']['pick']['test'])[:400]}")
    write_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
