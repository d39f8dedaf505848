"""The RESULTS.md sections of the automatic search: auto rows next to their hand-tuned rows, and the
1 -> 2 worker scaling (bench/search_scaling.py). Written from bench/results/*.json only."""

from __future__ import annotations

import json
import pathlib

from convergence import changed_baselines, changed_baselines_line
from search_rows import AUTO_ROWS

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"


def load_auto_results(folder: pathlib.Path = RESULTS) -> dict:
    return {name: json.loads((folder / f"{name}.json").read_text())
            for name in AUTO_ROWS if (folder / f"{name}.json").is_file()}


def auto_lines(auto: dict, hand: dict) -> list[str]:
    lines = ["| row | budget | trials (finished / stopped early / failed) | trials per hour | pick: validation loss "
             "| pick on test: Δ points (3 seeds) | pick: ratio | hand-tuned row: Δ, ratio | goal |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in auto.items():
        s, spec = r["search"], r["spec"]
        c, pick = s["counts"], s["pick"]
        other = hand.get(spec["hand_row"])
        other_text = (f"{other['summary']['delta_points']['mean']:+.2f} ± {other['summary']['delta_points']['std']:.2f}, "
                      f"{other['summary']['ratio']['mean']:.1f}×" if other else "not run")
        over = r["seconds_total"] > 60 * r["budget_minutes"]
        base = r.get("baseline")  # trained once before the search (older rows: inside it)
        budget = (f"{r['budget_minutes']:.0f} min" + (" (reduced)" if r.get("reduced") else "")
                  + f", took {r['seconds_total'] / 60:.0f}" + (" (over)" if over else "")
                  + (f" + baseline {base['seconds'] / 60:.0f} min, trained once"
                     + (" (cached)" if base.get("cached") else "") if base else ", baseline included"))
        noise = s["settings"].get("validation_noise")
        noise_text = (f" (baseline's SE ±{noise['se_points']:.2f} on {noise['images']:,} images"
                      + (": the budget is within the noise)" if noise["max_loss_within_noise"] else ")")
                      if noise else "")
        goal = f"≥{spec['goal']['ratio']:.0f}× at ≥−{spec['goal']['max_loss_points']} {'✓' if r['goal_met'] else '✗'}"
        if pick and pick.get("test"):
            t = pick["test"]
            pick_text = (f"{pick['loss_points']:+.2f}{noise_text} | {t['delta_points']['mean']:+.2f} ± "
                         f"{t['delta_points']['std']:.2f} "
                         f"| **{t['ratio']['mean']:.1f}×**")
        else:
            pick_text = f"no trial within the budget{noise_text} | – | –"
        lines.append(f"| {name} | {budget}, {s['settings']['workers']} workers | {c['complete']} / {c['pruned']} / "
                     f"{c['fail']} | {r['trials_per_hour']:.0f} | {pick_text} | {other_text} | {goal} |")
    return lines + changed_baselines_line(
        changed_baselines(auto, AUTO_ROWS), "The shared baselines of ", 'bench/search_rows.py now sets for them (see '
        '"Have the baselines converged?")', "their searches measured losses")


def pick_lines(auto: dict) -> list[str]:
    lines = []
    for name, r in auto.items():
        pick = r["search"]["pick"]
        if not pick:
            continue
        settings = pick["settings"]
        checked = pick.get("confirmation") or []
        confirmed = ""
        if checked:
            mine = next(v for v in checked if v["trial"] == pick["trial"])
            error = (f" with a paired standard error of {mine['se_points']:.2f} (a pass needs the mean plus one "
                     "error within the budget)" if mine.get("se_points") is not None else "")
            others = ", ".join(f"{v['trial']} ({v['mean_loss_points']:+.2f})"  # candidates run before the pick
                               for v in checked[:checked.index(mine)])
            confirmed = (f" Confirmed on validation with seeds {mine['seeds']}: mean loss "
                         f"{mine['mean_loss_points']:+.2f} points{error}"
                         + (f"; smaller candidates that did not pass: {others}" if others else "") + ".")
        lines.append(f"- **{name}** pick (trial {pick['trial']}): sparsity "
                     f"`{json.dumps(settings['prune']['layer_sparsity'])}`, weight bits "
                     f"`{json.dumps(settings['quant']['layer_weight_bits'])}`, activation bits "
                     f"{settings['quant']['activation_bits']}, fine-tune {settings['finetune']['epochs']} epochs at "
                     f"{settings['finetune']['learning_rate']:.2g}, QAT {settings['qat']['epochs']} epochs."
                     + confirmed)
    return lines


def scaling_lines(folder: pathlib.Path = RESULTS) -> list[str]:
    path = folder / "search_scaling.json"
    if not path.is_file():
        return []
    s = json.loads(path.read_text())
    runs = {r["workers"]: r for r in s["runs"]}
    lines = [f"Same search ({s['description']}), run with 1 then 2 workers in one process run on this "
             f"{s['machine']} machine:", ""]
    for workers, r in sorted(runs.items()):
        lines.append(f"- {workers} worker{'s' if workers > 1 else ''} ({r['tf_threads']} TensorFlow threads each): "
                     f"{r['trials']} trials in {r['seconds']:.0f} s, **{r['trials_per_hour']:.0f} trials per hour**")
    if 1 in runs and 2 in runs:
        lines.append(f"- speed-up of 2 workers over 1: **{runs[2]['trials_per_hour'] / runs[1]['trials_per_hour']:.2f}×**")
    lines += ["", estimate_text(s)]
    return lines


def estimate_text(s: dict) -> str:
    """What the measured figures say about N machines (derived here from the JSON, not typed in)."""
    runs = {r["workers"]: r for r in s["runs"]}
    best = max(runs.values(), key=lambda r: r["trials_per_hour"])
    worst_n, worst = max(((int(n), v["ask_s"] + v["tell_s"]) for n, v in s["client_cost"].items()),
                         key=lambda item: item[1])
    machine_seconds = 3600.0 / best["trials_per_hour"]  # one trial's share of one machine
    feeds = best["trial_seconds_mean"] / worst
    return (f"Estimate for N machines like this one: trials are independent, so a search runs about "
            f"{best['trials_per_hour']:.0f} × N trials per hour ({best['workers']} workers per machine) while three "
            f"things keep up. (1) The client: one Optuna ask + tell on the journal took at most {worst * 1000:.0f} ms "
            f"(after {worst_n} finished trials; TPE's cost grows with the finished trials), against "
            f"{best['trial_seconds_mean']:.0f} s per trial, so one client can keep about {feeds:.0f} trials running "
            f"at once, i.e. roughly {feeds / best['workers']:.0f} machines, before asking becomes the bottleneck "
            f"(and fewer as the study grows past {worst_n} trials). (2) Data: a named dataset is loaded on each "
            f"worker through the offline chain, nothing through the scheduler. (3) The baseline: "
            f"~{s.get('baseline_fp32_kb', 0):.0f} KB of weights, sent once per worker. The scheduler sees one task "
            f"per trial (one every {machine_seconds:.0f} s per machine here), far below what it handles. On this "
            f"2-core machine the 2-worker gain is modest because each worker gets one TensorFlow thread: it comes "
            f"from overlapping the serial parts (Python, conversion, evaluation) of two trials.")


def search_markdown(hand: dict) -> list[str]:
    auto = load_auto_results()
    scaling = scaling_lines()
    if not auto and not scaling:
        return []
    lines = ["", "## Automatic search (workbench.search)", "",
             "Each auto row searches per-layer sparsity and weight bits (plus activation bits, fine-tune epochs and "
             "learning rate) with Optuna on a local Dask cluster, judging trials on the validation split only, "
             "within a fixed wall-time budget; its pick is then fine-tuned, quantized and measured on the test "
             "split over 3 seeds, from the same baseline (trained once, with the hand-tuned row's rules, and kept "
             "for the next run: bench/shared_baseline.py). The budget is the search's: sensitivity scan, trials "
             "and the pick's test seeds; the baseline's training time is shown beside it (older rows counted it "
             "inside the budget: \"baseline included\").", ""]
    if auto:
        lines += auto_lines(auto, hand) + ["", *pick_lines(auto)]
    else:
        lines += ["No auto row has run yet (`.venv/bin/python bench/search_run.py auto-lenet5-mnist`)."]
    if scaling:
        lines += ["", "### Scaling: 1 and 2 workers", "", *scaling_lines()]
    return lines
