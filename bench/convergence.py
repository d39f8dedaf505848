"""Has a row's baseline converged? Train it again under looser rules and compare, on the validation split only.

    .venv/bin/python bench/convergence.py mobilenet025-fashion [--seeds 0,1] [--probes bench/...json]

Each seed's baseline under the row's own rule comes from bench/cache/ (bench/shared_baseline.py, trained there if
absent). Each probe trains the same network from the same seed under a looser rule: more patience before the
learning rate drops and before early stopping, more epochs allowed, or another learning rate. A probe that beats
the row's baseline by more than two paired standard errors on validation says the row's rule stops too soon
(the baseline is under-trained, and every compression row measured against it looks better than it is); none
doing so is the evidence that it has converged. The test split is not touched. Written to
bench/results/convergence/<row>.json (all-or-nothing, after every run); RESULTS.md shows it via bench/tables.py.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CONVERGENCE = HERE / "results" / "convergence"
# Looser than every row's rule (patience 3-5, at most 30-60 epochs): twice the patience or more, so the learning
# rate falls only after 4 epochs without a better validation accuracy, and room for twice the epochs.
PROBES = {"patience 8": {"patience": 8, "epochs": 80},
          "patience 8, learning rate x3": {"patience": 8, "epochs": 80, "learning_rate": 3e-3}}
MARGIN_SE = 2.0  # a probe better by more than this many paired standard errors: the row's baseline is short


def probe_configs(spec: dict, probes: dict) -> dict:
    """Each probe's full baseline settings (the row's, with the probe's laid over them), checked before training."""
    from workbench.config import TrainConfig
    from workbench.errors import ConfigError

    if not isinstance(probes, dict) or not probes:
        raise ConfigError(f"probes must map names to baseline settings. Received: {probes!r}")
    out = {}
    for name, over in probes.items():
        if not isinstance(over, dict) or set(over) - {"patience", "epochs", "learning_rate", "min_epochs"}:
            raise ConfigError(f"Probe {name!r} may set patience, epochs, learning_rate and min_epochs. "
                              f"Received: {over!r}")
        settings = {**spec["baseline"], **over}
        TrainConfig(**settings)
        out[name] = settings
    return out


def verdict(runs: list[dict]) -> dict:
    """Over every seed and probe: the largest gain of a probe over the row's baseline, and whether any probe beat
    it by more than MARGIN_SE paired standard errors."""
    gains = [(r["gain_points"] / r["se_points"] if r["se_points"] else 0.0, r) for r in runs]
    worst = max(gains, key=lambda g: g[0])[1] if gains else None
    return {"converged": all(g <= MARGIN_SE for g, _ in gains), "margin_se": MARGIN_SE,
            "largest_gain_points": worst["gain_points"] if worst else None,
            "largest_gain_probe": worst["probe"] if worst else None, "largest_gain_seed": worst["seed"] if worst else None}


def probe_one(spec: dict, data, settings: dict, seed: int, reference) -> dict:
    """Train the row's network from ``seed`` under ``settings``; its validation accuracy against ``reference``
    (the row's baseline of that seed), on the same images."""
    import workbench as wb
    from workbench import stages
    from workbench.nn.evaluate import correct_predictions
    from workbench.stats import paired_delta

    run = stages.start_run(spec["model"], data, training={"baseline": wb.TrainConfig(seed=seed, **settings)},
                           model_kwargs=spec["model_kwargs"])
    stages.train_baseline(run)
    x, y = data.split("validation")
    delta = paired_delta(correct_predictions(reference, x, y), correct_predictions(run.baseline, x, y))
    report = run.reports["baseline"]
    return {"seed": seed, "settings": settings, "rule": report["rule"], "epochs": report["epochs"],
            "best_epoch": report["best_epoch"], "validation": run.validation["baseline"],
            "gain_points": delta["delta_points"], "se_points": delta["se_points"], "p_value": delta["p_value"],
            "seconds": run.seconds["baseline"]}


def main(argv=None) -> dict:
    from rows import ROWS
    from run import load_row_data
    from shared_baseline import shared_baseline

    from workbench.errors import ConfigError
    from workbench.io import write_text

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("row")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--probes", default=None, help="JSON file: probe name -> baseline settings to change")
    parser.add_argument("--out", default=None, help="default: bench/results/convergence/<row>.json")
    args = parser.parse_args(argv)
    if args.row not in ROWS:
        raise SystemExit(str(ConfigError(f"Unknown row; use one of {sorted(ROWS)}. Received: {args.row!r}")))
    spec = ROWS[args.row]
    configs = probe_configs(spec, json.loads(pathlib.Path(args.probes).read_text()) if args.probes else PROBES)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = pathlib.Path(args.out) if args.out else CONVERGENCE / f"{args.row}.json"
    data = load_row_data(spec)
    result = {"row": args.row, "split": "validation", "seeds": seeds, "dataset": data.summary(),
              "row_rule": spec["baseline"], "probes": configs, "baselines": {}, "runs": []}
    started = time.perf_counter()
    for seed in seeds:
        reference, info = shared_baseline(spec, data, seed)
        result["baselines"][str(seed)] = {k: v for k, v in info.items() if k != "history"}
        for name, settings in configs.items():
            figures = {"probe": name, **probe_one(spec, data, settings, seed, reference)}
            result["runs"].append(figures)
            result["verdict"] = verdict(result["runs"])
            result["seconds_total"] = time.perf_counter() - started
            print(f"  {args.row} seed {seed} / {name}: {figures['epochs']} epochs (best {figures['best_epoch']}), "
                  f"validation {figures['validation']:.2%} vs {info['validation']:.2%}: "
                  f"{figures['gain_points']:+.2f} ± {figures['se_points']:.2f} points ({figures['seconds']:.0f} s)",
                  flush=True)
            write_text(out, json.dumps(result, indent=1, sort_keys=True))  # all-or-nothing
    return result


def changed_baselines(results: dict, specs: dict) -> dict:
    """Results whose baselines trained under other settings than ``specs`` (bench/rows.py's or search_rows.py's rows)
    now give them: name -> the settings they ran with."""
    return {name: r["spec"]["baseline"] for name, r in results.items()
            if name in specs and r.get("spec", {}).get("baseline") not in (None, specs[name]["baseline"])}


def changed_baselines_line(changed: dict, lead: str, where: str, what: str) -> list[str]:
    """RESULTS.md's warning for ``changed`` (empty: none): ``lead`` the rows, ``where`` their rule's file and how to
    find the convergence section, ``what`` was measured against the earlier baseline."""
    if not changed:
        return []
    return ["", lead + ", ".join(f"{name} ({json.dumps(was)})" for name, was in changed.items())
            + f" trained under an earlier rule than {where}: {what} against a baseline"
            " short of converged. Re-runs pending."]


def load_convergence(folder: pathlib.Path = CONVERGENCE) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def convergence_lines(measured: list[dict]) -> list[str]:
    """RESULTS.md's section: per row, the row's baseline against each looser probe, on validation."""
    if not measured:
        return []
    lines = ["", "## Have the baselines converged?", "",
             "`bench/convergence.py ROW`: each seed's baseline under the row's rule against the same network trained "
             "from the same seed under looser rules (validation split only; gain = probe minus row, in points, with "
             f"the paired standard error). Converged: no probe better by more than {MARGIN_SE:g} standard errors.",
             "", "| row | seed | row's baseline | probe | epochs (best) | validation | gain | s |",
             "|---|---|---|---|---|---|---|---|"]
    for result in measured:
        for run in result["runs"]:
            base = result["baselines"][str(run["seed"])]
            lines.append(f"| {result['row']} | {run['seed']} | {base['validation']:.2%} after {base['epochs']} "
                         f"(best {base['best_epoch']}) | {run['probe']} | {run['epochs']} ({run['best_epoch']}) | "
                         f"{run['validation']:.2%} | {run['gain_points']:+.2f} ± {run['se_points']:.2f} | "
                         f"{run['seconds']:.0f} |")
    lines.append("")
    for result in measured:
        v = verdict(result["runs"])  # from the runs, so the rule is the one above
        lines.append(f"- **{result['row']}**: " + ("converged" if v["converged"] else "**not converged**")
                     + f"; the largest gain is {v['largest_gain_points']:+.2f} points, {v['largest_gain_probe']} on "
                     f"seed {v['largest_gain_seed']}.")
    return lines


if __name__ == "__main__":
    main()
