"""Confirming the pick: re-run the smallest candidates with fresh seeds on validation before the test split.

Among many trials, the smallest one that passes the accuracy budget is also the one most likely to have passed
by luck (its seed's fine-tune happened to suit the validation images): the winner's curse. Measured here: on
Fashion-MNIST, the pick of 96 trials lost exactly the budget, 0.50 points, on validation, and 0.93 on test over
3 seeds (bench/results/auto-lenet5-fashion.json at 87c31e5). So before the pick is measured on test, the
smallest candidates within the budget are fine-tuned again with other seeds (the final seeds other than the
search's) and measured on validation; the pick is the smallest whose mean loss over those fresh runs is within
the budget. The trial's own value is left out of that mean: it is the one the selection favoured.

A mean on the budget's edge is still a coin toss on another split: the next run measured (auto-lenet5-fashion at
17b9a1e) was confirmed at a fresh mean of exactly 0.50 and lost 0.71 on test. So a candidate passes only with
headroom: its loss plus ``HEADROOM`` standard errors must be within the budget. The error is the paired one (the
per-image disagreement between the int8 model and the baseline on the same validation images,
``workbench.stats.paired_se_points``): about 0.2 points on 6,000 Fashion-MNIST images, where either accuracy alone
is known to 0.4. Candidates are taken only when their own search value already has that headroom (the rule and
the sampler's constraint: ``workbench.search.budget``).

Pure decisions on plain values; the search (``workbench.search.api``) runs the jobs.
"""

from __future__ import annotations

import pandas as pd

from workbench.search.budget import HEADROOM, with_headroom
from workbench.search.report import within_budget_by_size

MAX_CANDIDATES = 9  # then the search gives up confirming and says so
MIN_RESERVED_BATCHES = 2  # confirmation batches the time budget always keeps room for
RESERVE_SHARE = 0.1  # more batches are reserved while together they take at most this share of the time budget


def batch_size(slots: int, fresh_seeds: int) -> int:
    """Candidates confirmed at a time (each with every fresh seed), smallest first: as many as fill the workers
    once, at least one. Until 2026-12-02 always 3: on 2 workers with 2 fresh seeds that is 3 rounds of runs, where
    the smallest candidate alone (1 round) ends the confirmation whenever it passes, and the time budget reserved
    two such batches (12 runs) however long a run was; a MobileNet run takes about 16 minutes there."""
    return max(1, int(slots) // max(1, int(fresh_seeds)))


def reserved_batches(batch_seconds: float | None, budget_seconds: float | None, per_batch: int) -> int:
    """Confirmation batches the time budget keeps room for: MIN_RESERVED_BATCHES, and more while they take at most
    RESERVE_SHARE of the budget (at most the batches MAX_CANDIDATES fill). ``batch_seconds`` is one batch's wall
    time. Until 2026-12-02 always 2: auto-lenet5-mnist (a batch is about a minute) confirmed two candidates in its
    60 minutes, both fell short on fresh seeds, and the run ended with no pick, where six minutes held five
    batches (bench/results/auto-runs/auto-lenet5-mnist-62a1f80.json). A MobileNet batch of about 5 minutes still
    gets 2 of a 105-minute budget."""
    most = max(MIN_RESERVED_BATCHES, -(-MAX_CANDIDATES // max(1, int(per_batch))))
    if not batch_seconds or not budget_seconds or batch_seconds <= 0:
        return MIN_RESERVED_BATCHES
    return int(min(most, max(MIN_RESERVED_BATCHES, RESERVE_SHARE * budget_seconds // batch_seconds)))


def candidates(front: pd.DataFrame, max_loss: float | None = None) -> list[int]:
    """The front's trials within the budget, smallest first (at most MAX_CANDIDATES); with ``max_loss``, only
    those whose own validation loss has the headroom (``se_points`` column, when the trials measured it)."""
    order = within_budget_by_size(front)
    if max_loss is not None and "se_points" in front.columns and len(order):
        rows = front.set_index("trial")
        order = [n for n in order if with_headroom(float(rows.at[n, "loss_points"]), rows.at[n, "se_points"], max_loss)]
    return order[:MAX_CANDIDATES]


def judge(trial: int, runs: list[dict], baseline_validation: float, max_loss: float) -> dict:
    """One candidate's fresh runs (records of run_job on validation) against the budget."""
    done = [r for r in runs if r.get("state") == "complete"]
    losses = [round((baseline_validation - r["values"][1]) * 100.0, 6) for r in done]
    mean = sum(losses) / len(losses) if losses else None
    errors = [r["paired"]["se_points"] for r in done if (r.get("paired") or {}).get("se_points") is not None]
    se = sum(errors) / len(errors) if errors else None  # the runs share the images: their errors do not average out
    return {"trial": trial, "seeds": [r["seed"] for r in done], "val_loss_points": losses, "mean_loss_points": mean,
            "se_points": se, "headroom_se": HEADROOM,
            "failed_seeds": [r.get("seed") for r in runs if r.get("state") != "complete"],
            "passed": mean is not None and with_headroom(mean, se, max_loss)}


def chosen(verdicts: list[dict]) -> int | None:
    """The smallest candidate that passed (verdicts are in candidate order), or None."""
    return next((v["trial"] for v in verdicts if v["passed"]), None)
