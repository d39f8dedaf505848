"""The search's results: every trial as a table, the Pareto front, the pick, and the report that holds them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from workbench.search.engine import json_ready
from workbench.stats import spread

TRIAL_COLUMNS = ["trial", "state", "gzip_bytes", "ratio", "val_accuracy", "loss_points", "se_points", "within_budget",
                 "finetune_epochs", "stopped_at", "seconds", "worker", "error"]


def trials_frame(study, baseline_validation: float, max_loss: float) -> pd.DataFrame:
    """One row per trial: state, figures and parameters (params as ``param:<name>`` columns)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        record = t.user_attrs.get("record", {})
        row = {"trial": t.number, "state": t.state.name.lower(), "gzip_bytes": np.nan, "ratio": np.nan,
               "val_accuracy": np.nan, "loss_points": np.nan, "se_points": np.nan, "within_budget": False,
               "finetune_epochs": t.params.get("finetune_epochs"), "stopped_at": record.get("stopped_at"),
               "seconds": (record.get("seconds") or {}).get("total"), "worker": record.get("worker"),
               "error": record.get("error")}
        if t.state == TrialState.COMPLETE:
            gzip_bytes, val = t.values
            loss = loss_points(baseline_validation, val)
            row.update(gzip_bytes=int(gzip_bytes), val_accuracy=float(val), loss_points=loss,
                       se_points=(record.get("paired") or {}).get("se_points", np.nan),
                       ratio=(record.get("sizes") or {}).get("compression_ratio", np.nan),
                       within_budget=bool(loss <= max_loss))
        row.update({f"param:{k}": v for k, v in t.params.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame if len(frame) else pd.DataFrame(columns=TRIAL_COLUMNS)


def loss_points(baseline: float, accuracy: float) -> float:
    """Accuracy lost against the baseline, in percentage points (rounded past float noise: 3.0, not 3.0000000000000027)."""
    return round((baseline - accuracy) * 100.0, 9)


def pareto_mask(gzip_bytes, accuracy) -> np.ndarray:
    """True for points no other point dominates (no larger and no less accurate, better in one)."""
    b, a = np.asarray(gzip_bytes, float), np.asarray(accuracy, float)
    keep = np.ones(len(b), dtype=bool)
    for i in range(len(b)):
        dominated = (b <= b[i]) & (a >= a[i]) & ((b < b[i]) | (a > a[i]))
        keep[i] = not dominated.any()
    return keep


def pareto_front(trials: pd.DataFrame) -> pd.DataFrame:
    """The finished trials on the size / validation-accuracy Pareto front, smallest first."""
    done = trials[trials["state"] == "complete"]
    if not len(done):
        return done.copy()
    front = done[pareto_mask(done["gzip_bytes"], done["val_accuracy"])]
    return front.sort_values(["gzip_bytes", "val_accuracy"], ascending=[True, False]).reset_index(drop=True)


def within_budget_by_size(front: pd.DataFrame) -> list[int]:
    """The front's trials whose validation loss is within the budget, smallest first (ties: more accurate first)."""
    ok = front[front["within_budget"].astype(bool)] if len(front) else front
    return [int(t) for t in ok.sort_values(["gzip_bytes", "val_accuracy"], ascending=[True, False])["trial"]]


def pick_trial(front: pd.DataFrame) -> int | None:
    """The smallest model on the front whose validation loss is within the budget (None when none is)."""
    return next(iter(within_budget_by_size(front)), None)


def summarise_seeds(records: list[dict]) -> dict:
    """Mean and spread of the pick's final runs on the test split (one per seed)."""
    int8 = [r["test"]["int8"]["accuracy"] for r in records]
    base = [r["test"]["baseline"]["accuracy"] for r in records]
    delta = [r["test"]["delta"]["delta_points"] for r in records]
    ratio = [r["sizes"]["compression_ratio"] for r in records]
    return {"seeds": [r["seed"] for r in records], "int8": spread(int8), "baseline": spread(base),
            "delta_points": spread(delta), "ratio": spread(ratio),
            "ci95": [r["test"]["int8"]["ci95"] for r in records],
            "mcnemar_p": [r["test"]["delta"].get("p_value") for r in records]}


@dataclasses.dataclass
class SearchReport:
    """What a search found.

    Attributes:
        trials: every trial (state, size, validation accuracy, loss in points, parameters).
        pareto: the Pareto front of the finished trials (size down, validation accuracy up).
        pick: the chosen trial: its number, parameters, figures and settings (``prune``, ``quant``,
            ``finetune``, ``qat`` as configs that ``compress()`` takes), and its test result over
            the final seeds; None when no trial met the budget.
        baseline: the shared baseline's validation (and test) accuracy and how it was trained.
        settings: the search's own settings (max_loss, budget, workers, space, seed).
        counts: trials complete / pruned (stopped early) / failed / interrupted.
        seconds, stopped, timed_out, dashboard, files: run facts.
    """

    trials: pd.DataFrame
    pareto: pd.DataFrame
    pick: dict | None
    baseline: dict
    settings: dict
    counts: dict
    seconds: dict = dataclasses.field(default_factory=dict)
    stopped: bool = False
    timed_out: bool = False
    dashboard: str | None = None
    files: dict = dataclasses.field(default_factory=dict)
    artifact: bytes | None = dataclasses.field(default=None, repr=False)  # the pick's .tflite (first seed)

    def pick_configs(self) -> dict:
        """{'prune': PruneConfig, 'quant': QuantConfig, 'finetune': TrainConfig, 'qat': TrainConfig} of the pick."""
        if self.pick is None:
            raise LookupError("No trial met the accuracy budget; there is no pick. Look at report.pareto, "
                              "or search again with a larger max_loss or budget.")
        return self.pick["configs"]

    def to_dict(self) -> dict:
        pick = None
        if self.pick is not None:
            pick = {k: v for k, v in self.pick.items() if k != "configs"}
            pick["settings"] = {k: c.get_config() for k, c in self.pick["configs"].items()}
        return json_ready({"pick": pick, "baseline": self.baseline, "settings": self.settings, "counts": self.counts,
                       "seconds": self.seconds, "stopped": self.stopped, "timed_out": self.timed_out,
                       "dashboard": self.dashboard, "files": self.files,
                       "pareto": self.pareto.to_dict(orient="records"),
                       "trials": self.trials.to_dict(orient="records")})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def summary(self) -> str:
        """One paragraph in words."""
        c = self.counts
        head = (f"{c.get('complete', 0)} trials finished, {c.get('pruned', 0)} stopped early, "
                f"{c.get('fail', 0)} failed; {len(self.pareto)} on the Pareto front.")
        caveat = noise_note(self.settings["max_loss"], self.settings.get("validation_noise"))
        caveat = f" Note: {caveat}" if caveat else ""
        checked = self.settings.get("confirmation")
        if self.pick is None:
            if isinstance(checked, list) and checked:
                return head + (f" None of the {len(checked)} smallest trials within {self.settings['max_loss']} "
                               f"points stayed within it, by one standard error, when fine-tuned again with other "
                               f"seeds (mean validation losses "
                               f"{', '.join(_points(v['mean_loss_points']) for v in checked)})."
                               + (" The time budget ran out before more could be checked."
                                  if self.settings.get("confirmation_out_of_time") else "")) + caveat
            if isinstance(checked, list) and len(within_budget_by_size(self.pareto)):
                return head + (f" Trials were within {self.settings['max_loss']} points on validation, but none "
                               "by a standard error of the paired loss: none was confirmed.") + caveat
            return head + f" No trial kept validation accuracy within {self.settings['max_loss']} points." + caveat
        p = self.pick
        text = (f"{head} Pick: trial {p['trial']}, {p['gzip_bytes']:,} bytes gzipped ({p['ratio']:.1f}x), "
                f"validation loss {p['loss_points']:+.2f} points.")
        if p.get("confirmation"):
            mine = next(v for v in p["confirmation"] if v["trial"] == p["trial"])
            smaller = len(p["confirmation"]) - 1
            se = (f" (standard error {mine['se_points']:.2f})" if mine.get("se_points") is not None else "")
            text += (f" Fine-tuned again with seeds {mine['seeds']}, it lost {_points(mine['mean_loss_points'])} "
                     f"on validation{se}" + (f" ({smaller} smaller trial{'s' if smaller > 1 else ''} did not stay within "
                                         f"the budget by a standard error when fine-tuned again)." if smaller
                                         else "."))
        final = p.get("test")
        if final:
            text += (f" Test over seeds {final['seeds']}: int8 {final['int8']['mean']:.2%} ± "
                     f"{final['int8']['std']:.2%}, {final['delta_points']['mean']:+.2f} ± "
                     f"{final['delta_points']['std']:.2f} points against the baseline, "
                     f"{final['ratio']['mean']:.1f}x.")
        return text + caveat


def _points(value) -> str:
    return "n/a" if value is None else f"{value:+.2f} points"


def noise_note(max_loss: float, noise: dict | None) -> str:
    """Words for a budget finer than the validation split resolves (``stats.resolution``), or ""."""
    if not noise or not noise.get("max_loss_within_noise"):
        return ""
    return (f"the budget of {max_loss:g} points is below the validation split's standard error "
            f"(±{noise['se_points']:.2f} points on {noise['images']:,} images), so which trials pass it is partly "
            f"luck; a larger validation split resolves finer budgets.")


def count_states(trials: pd.DataFrame, study) -> dict:
    counts = {state: int((trials["state"] == state).sum()) for state in ("complete", "pruned", "fail")}
    counts["interrupted"] = sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get("interrupted"))
    counts["total"] = int(len(trials))
    return counts
