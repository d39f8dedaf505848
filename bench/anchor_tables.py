"""tfmot's reference runs (bench/anchors/results/*.json, written by `make anchors`) in RESULTS.md and the package
summary: each reference with its seeds, and the rows run side by side with one, per training image."""

from __future__ import annotations

import json
import pathlib
import re

from workbench.stats import spread

HERE = pathlib.Path(__file__).resolve().parent
ANCHOR_RESULTS = HERE / "anchors" / "results"


def load_anchor_results() -> dict:
    """tfmot's runs, grouped by reference: ``tfmot-x.json`` (seed 0) with its other seeds ``tfmot-x-seedN.json``;
    each value is the list of runs, in seed order."""
    groups: dict = {}
    for path in sorted(ANCHOR_RESULTS.glob("*.json")):
        name = re.sub(r"-seed\d+$", "", path.stem)
        groups.setdefault(name, []).append(json.loads(path.read_text()))
    return {name: sorted(runs, key=lambda a: a.get("seed", 0)) for name, runs in groups.items()}


def anchor_points(anchors: dict) -> list[dict]:
    """tfmot's runs on the same splits, as comparison points (the mean over a reference's seeds)."""
    points = []
    for name, runs in anchors.items():
        model = runs[0].get("model", "lenet5")
        for i, row in enumerate(runs[0]["rows"]):
            same = [a["rows"][i] for a in runs if len(a["rows"]) > i]
            what = row.get("label") or f"LeNet-5, {row['sparsity_target']:.0%} sparse"
            points.append({"label": f"tfmot prune → PQAT here: {what}", "model": model, "seeds": len(same),
                           "fp32_bytes": row["fp32_bytes"],
                           "gzip_bytes": round(spread([r["gzip_bytes"] for r in same])["mean"]),
                           **{k: spread([r[k] for r in same])["mean"] for k in ("ratio", "delta_points")},
                           "run": name})
    return points


def anchor_lines(anchors: dict) -> list[str]:
    lines = []
    for name, runs in anchors.items():
        a = runs[0]
        seeds = ", ".join(str(r["seed"]) for r in runs)
        epochs = ", ".join(str(r["baseline_epochs"]) for r in runs)
        lines.append(f"- **{name}** (`{a.get('script', 'bench/anchors/tfmot_lenet5.py')}`, `make anchors`: tf_keras + "
                     f"tfmot {a['versions']['tfmot']} in their own venv; {a['source']}, {a['train']:,}/"
                     f"{a['validation']:,}/{a['test']:,}; baseline early-stopped after {epochs} epochs; "
                     f"seed{'s' if len(runs) > 1 else ''} {seeds}):")
        for i, row in enumerate(a["rows"]):
            same = [r["rows"][i] for r in runs if len(r["rows"]) > i]
            what = row.get("label") or f"{row['sparsity_target']:.0%} target"
            if len(same) == 1:
                speed = row.get("images_per_s")
                trained = (" Training images/s: " + ", ".join(f"{stage} {v:,.0f}" for stage, v in speed.items())
                           + f" (batch {a['batch']}, run alone)." if speed else "")
                lines.append(f"  - {what}: baseline {row['baseline_accuracy']:.2%} → int8 "
                             f"{row['int8_accuracy']:.2%} ({row['delta_points']:+.2f}), {row['gzip_bytes']:,} B gzip, "
                             f"**{row['ratio']:.1f}×**.{trained}")
                continue
            stats = {k: spread([r[k] for r in same])
                     for k in ("baseline_accuracy", "int8_accuracy", "delta_points", "ratio")}
            each = "; ".join(f"seed {r['seed']}: {x['int8_accuracy']:.2%} ({x['delta_points']:+.2f}), "
                             f"{x['ratio']:.1f}×, {r['seconds']:,.0f} s" for r, x in zip(runs, same))
            lines.append(f"  - {what}, mean ± std over {len(same)} seeds: baseline "
                         f"{stats['baseline_accuracy']['mean']:.2%} ± {stats['baseline_accuracy']['std'] * 100:.2f} → int8 "
                         f"{stats['int8_accuracy']['mean']:.2%} ± {stats['int8_accuracy']['std'] * 100:.2f} "
                         f"({stats['delta_points']['mean']:+.2f} ± {stats['delta_points']['std']:.2f}), "
                         f"**{stats['ratio']['mean']:.1f}×** ({each}).")
    return lines




def _pace(images: float, seconds: float) -> float:
    return images / seconds if seconds else float("nan")


def row_paces(result: dict) -> list[dict]:
    """Training images per second of each seed of a workbench row: per stage and over the whole row."""
    train, spec = result["dataset"]["train"], result["spec"]
    tune, qat = spec["finetune"]["epochs"], spec["qat"]["epochs"]
    out = []
    for run in result["runs"]:
        s, epochs = run["seconds"], run["baseline_training"]["epochs"]
        out.append({"seed": run["seed"], "epochs": epochs, "baseline": _pace(train * epochs, s["baseline"]),
                    "finetune": _pace(train * tune, s["finetune"]), "qat": _pace(train * qat, s["qat"]),
                    "seconds": s["total"], "row": _pace(train * (epochs + tune + qat), s["total"]),
                    "int8": run["accuracy"]["int8"]})
    return out


def anchor_paces(runs: list[dict]) -> list[dict]:
    """The same for a tfmot reference's seeds."""
    out = []
    for a in runs:
        row, epochs = a["rows"][0], a["baseline_epochs"]
        images = a["train"] * (epochs + a["finetune"]["epochs"] + a["pqat"]["epochs"])
        speed = row["images_per_s"]
        out.append({"seed": a["seed"], "epochs": epochs, "baseline": speed["baseline"], "finetune": speed["finetune"],
                    "qat": speed["qat"], "seconds": a["seconds"], "row": _pace(images, a["seconds"]),
                    "int8": row["int8_accuracy"]})
    return out


# Rows whose every seed and every seed of whose tfmot reference ran alone on the machine (the other rows' seeds
# were measured while other work shared it: their wall times are not comparable).
SIDE_BY_SIDE = ("mobilenet-fashion-full",)


def side_by_side_lines(results: dict, anchors: dict) -> list[str]:
    """Each row of SIDE_BY_SIDE that has a tfmot reference with training speeds (``tfmot-<row>``), per seed and
    on average."""
    lines = []
    for name, result in results.items():
        runs = anchors.get(f"tfmot-{name}") if name in SIDE_BY_SIDE else None
        if not runs or not all(r["rows"] and r["rows"][0].get("images_per_s") for r in runs):
            continue
        ours, theirs = row_paces(result), anchor_paces(runs)
        lines += ["", f"Side by side, **{name}** and its tfmot reference (training images per second: the baseline's "
                      "include its validation passes; whole row = all training images of the row over its wall "
                      "time; each run alone on the machine, but at different moments of a shared machine, so "
                      "compare the means; bench/results/side-by-side/README.md says which ran next to which):", "",
                  "| run | baseline epochs | baseline | fine-tune | QAT / PQAT | whole row (s) | whole row | int8 |",
                  "|---|---|---|---|---|---|---|---|"]
        for who, paces in (("workbench", ours), ("tfmot", theirs)):
            for p in paces:
                lines.append(f"| {who}, seed {p['seed']} | {p['epochs']} | {p['baseline']:,.0f} | {p['finetune']:,.0f} "
                             f"| {p['qat']:,.0f} | {p['seconds']:,.0f} | {p['row']:,.0f} | {p['int8']:.2%} |")
        mean = {who: {k: sum(p[k] for p in paces) / len(paces) for k in ("baseline", "finetune", "qat", "row", "int8")}
                for who, paces in (("workbench", ours), ("tfmot", theirs))}
        w, t = mean["workbench"], mean["tfmot"]
        lines.append(f"| **ratio of the means** (workbench / tfmot) | | {w['baseline'] / t['baseline']:.2f}× | "
                     f"{w['finetune'] / t['finetune']:.2f}× | {w['qat'] / t['qat']:.2f}× | | "
                     f"**{w['row'] / t['row']:.2f}×** | {(w['int8'] - t['int8']) * 100:+.2f} points |")
    return lines
