"""Screen variants of a hand-tuned row's recipe on the validation split only; the test split is not touched.

A row's settings are chosen here, then ``bench/run.py`` measures the chosen recipe on test, once per seed:

    .venv/bin/python bench/screen.py mobilenet025-fashion --variants VARIANTS.json [--seeds 0,1]

VARIANTS.json maps a variant's name to overrides of the row's spec in bench/rows.py (a nested dict merges into
the row's, any other value replaces it); ``{"row": {}}`` screens the row as it is. Each seed's baseline trains
once under the row's rules (bench/shared_baseline.py, kept in bench/cache/) and every variant starts from it, as
the search's trials do. Written to bench/results/screens/<row>.json (all-or-nothing, after every variant): per
variant and seed the validation accuracy after each stage, the int8 artifact's loss in points against the baseline
with its paired standard error, the gzip -9 bytes and the ratio; per variant the means over its seeds.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rows import ROWS  # noqa: E402
from run import load_row_data  # noqa: E402
from shared_baseline import shared_baseline  # noqa: E402

import workbench as wb  # noqa: E402
from workbench import stages  # noqa: E402
from workbench.errors import ConfigError  # noqa: E402
from workbench.io import write_text  # noqa: E402
from workbench.stats import spread  # noqa: E402

SCREENS = HERE / "results" / "screens"
RECIPE = ("prune", "quant", "finetune", "qat")  # what a variant may change (the baseline and data stay the row's)


def merged(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on it: nested dicts merge, other values replace."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def variant_specs(row: str, variants: dict) -> dict[str, dict]:
    """Each variant's full spec, checked before any training (unknown keys and bad settings are refused)."""
    if row not in ROWS:
        raise ConfigError(f"Unknown row {row!r}; use one of {sorted(ROWS)}. Received: {row!r}")
    if not isinstance(variants, dict) or not variants:
        raise ConfigError(f"variants must map names to overrides of the row's spec. Received: {variants!r}")
    specs = {}
    for name, over in variants.items():
        extra = set(over) - set(RECIPE) if isinstance(over, dict) else None
        if extra is None or extra:
            raise ConfigError(f"Variant {name!r} may override only {list(RECIPE)}. Received: {over!r}")
        spec = merged(ROWS[row], over)
        wb.PruneConfig(**spec["prune"]), wb.QuantConfig(**spec["quant"])
        wb.TrainConfig(**spec["finetune"]), wb.TrainConfig(**spec["qat"])
        specs[name] = spec
    return specs


def screen_one(spec: dict, data, baseline, info: dict, seed: int) -> dict:
    """One variant from one seed's baseline: prune, fine-tune, QAT, export, and the validation split."""
    training = {name: wb.TrainConfig(seed=seed, **spec[name]) for name in ("finetune", "qat")}
    run = stages.start_run(spec["model"], data, wb.PruneConfig(**spec["prune"]), wb.QuantConfig(**spec["quant"]),
                           training, model_kwargs=spec["model_kwargs"])
    stages.given_baseline(run, baseline, info.get("rule", "the row's rule"), info["validation"])
    started = time.perf_counter()
    for step in (stages.prune, stages.fine_tune, stages.quantize, stages.export):
        step(run)
    delta = stages.measure(run, "validation")["delta"]
    return {"seed": seed, "validation": run.validation, "loss_points": -delta["delta_points"],
            "se_points": delta["se_points"], "gzip_bytes": run.sizes["gzip_bytes"],
            "ratio": run.sizes["compression_ratio"], "seconds": time.perf_counter() - started}


def summary(runs: list[dict]) -> dict:
    """A variant's means over its seeds."""
    return {**{key: spread([r[key] for r in runs])["mean"] for key in ("loss_points", "se_points", "ratio",
                                                                       "gzip_bytes")},
            "seeds": [r["seed"] for r in runs]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("row")
    parser.add_argument("--variants", required=True, help="JSON file: variant name -> overrides of the row's spec")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", default=None, help="default: bench/results/screens/<row>.json")
    args = parser.parse_args(argv)
    overrides = json.loads(pathlib.Path(args.variants).read_text())
    specs = variant_specs(args.row, overrides)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = pathlib.Path(args.out) if args.out else SCREENS / f"{args.row}.json"
    data = load_row_data(ROWS[args.row])
    result = {"row": args.row, "split": "validation", "seeds": seeds, "dataset": data.summary(),
              "overrides": overrides, "variants": {}}
    for seed in seeds:
        baseline, info = shared_baseline(ROWS[args.row], data, seed)
        result.setdefault("baselines", {})[str(seed)] = {k: v for k, v in info.items() if k != "history"}
        for name, spec in specs.items():
            figures = screen_one(spec, data, baseline, info, seed)
            runs = result["variants"].setdefault(name, {"runs": []})["runs"]
            runs.append(figures)
            result["variants"][name]["summary"] = summary(runs)
            print(f"  {args.row} / {name} seed {seed}: {figures['ratio']:.1f}x, validation loss "
                  f"{figures['loss_points']:+.2f} ± {figures['se_points']:.2f} points ({figures['seconds']:.0f} s)",
                  flush=True)
            write_text(out, json.dumps(result, indent=1, sort_keys=True))  # all-or-nothing
    return result


if __name__ == "__main__":
    main()
