"""Confirming the pick: re-run the smallest candidates with fresh seeds on validation before the test split.

Among many trials, the smallest one that passes the accuracy budget is also the one most likely to have passed
by luck (its seed's fine-tune happened to suit the validation images): the winner's curse. Measured here: on
Fashion-MNIST, the pick of 96 trials lost exactly the budget, 0.50 points, on validation, and 0.93 on test over
3 seeds (bench/results/auto-lenet5-fashion.json at 87c31e5). So before the pick is measured on test, the
smallest candidates within the budget are fine-tuned again with other seeds (the final seeds other than the
search's) and measured on validation; the pick is the smallest whose mean loss over those fresh runs is within
the budget. The trial's own value is left out of that mean: it is the one the selection favoured.

Pure decisions on plain values; the search (``workbench.search.api``) runs the jobs.
"""

from __future__ import annotations

import pandas as pd

from workbench.search.report import within_budget_by_size

BATCH = 3  # candidates confirmed at a time (each with every fresh seed), smallest first
MAX_CANDIDATES = 9  # then the search gives up confirming and says so


def candidates(front: pd.DataFrame) -> list[int]:
    """The front's trials within the budget, smallest first (at most MAX_CANDIDATES)."""
    return within_budget_by_size(front)[:MAX_CANDIDATES]


def judge(trial: int, runs: list[dict], baseline_validation: float, max_loss: float) -> dict:
    """One candidate's fresh runs (records of run_job on validation) against the budget."""
    done = [r for r in runs if r.get("state") == "complete"]
    losses = [round((baseline_validation - r["values"][1]) * 100.0, 6) for r in done]
    mean = sum(losses) / len(losses) if losses else None
    return {"trial": trial, "seeds": [r["seed"] for r in done], "val_loss_points": losses, "mean_loss_points": mean,
            "failed_seeds": [r.get("seed") for r in runs if r.get("state") != "complete"],
            "passed": mean is not None and mean <= max_loss + 1e-9}


def chosen(verdicts: list[dict]) -> int | None:
    """The smallest candidate that passed (verdicts are in candidate order), or None."""
    return next((v["trial"] for v in verdicts if v["passed"]), None)
