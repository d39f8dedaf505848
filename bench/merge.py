"""Merge result files of one row whose seeds ran in separate processes (e.g. two at a time on two cores).

    .venv/bin/python bench/merge.py OUT.json IN.json [IN.json ...] [--beside "two seeds at a time, one TF thread each"]

Every input must hold the same row under the same spec, limit and rules (v2). Seeds are united (a seed found in
several files must be the same record in each); the summary and the goal are recomputed as bench/run.py does, and
RESULTS.md and README's table are rewritten. ``--beside`` marks the runs that shared the machine, so their wall
times are read as such.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from tables import goal_met, summarise, write_all  # noqa: E402

SAME = ("row", "spec", "limit", "rules", "dataset", "machine")


def merge(results: list[dict], beside: str = "") -> dict:
    if not results:
        raise ValueError("merge needs at least one result file; received none")
    first = results[0]
    for other in results[1:]:
        differ = [k for k in SAME if other.get(k) != first.get(k)]
        if differ:
            raise ValueError(f"cannot merge {other.get('row')!r} into {first.get('row')!r}: they differ in {differ}")
    by_seed: dict[int, dict] = {}
    for result in results:
        for run in result["runs"]:
            kept = by_seed.setdefault(run["seed"], run)
            if kept is not run and json.dumps(kept, sort_keys=True) != json.dumps(run, sort_keys=True):
                raise ValueError(f"seed {run['seed']} differs between the files; received two different records")
    planned = sorted({s for r in results for s in r["seeds_planned"]} | set(by_seed))
    runs = []
    for seed in sorted(by_seed):
        run = dict(by_seed[seed])
        if beside and not _in_every(results, seed):
            run.setdefault("ran_beside", beside)
        runs.append(run)
    merged = {k: first[k] for k in SAME}
    merged.update({"seeds": sorted(by_seed), "seeds_planned": planned, "complete": set(planned) <= set(by_seed),
                   "runs": runs, "seconds_total": max(r["seconds_total"] for r in results)})
    merged["summary"] = summarise(runs)
    merged["goal_met"] = goal_met(merged, merged["spec"]["goal"])
    return merged


def _in_every(results: list[dict], seed: int) -> bool:
    """A seed present in every input was there before the split (e.g. seed 0 kept by --resume)."""
    return all(seed in r["seeds"] for r in results)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--beside", default="", help="how the seeds that ran apart shared the machine")
    args = parser.parse_args()
    merged = merge([json.loads(pathlib.Path(p).read_text()) for p in args.inputs], beside=args.beside)
    out = pathlib.Path(args.out)
    tmp = out.with_suffix(".json.part")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True))
    tmp.replace(out)
    write_all()
    print(f"{merged['row']}: seeds {merged['seeds']} of {merged['seeds_planned']}; "
          f"{merged['summary']['ratio']['mean']:.1f}x at {merged['summary']['delta_points']['mean']:+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
