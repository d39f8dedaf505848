"""The accuracy budget with headroom: one rule for the sampler's constraint and for the pick's confirmation.

A validation loss is measured on a finite split: its paired standard error (``workbench.stats.paired_se_points``)
is about 0.2 points on 2,000 to 6,000 images. A candidate counts as within the budget only when its loss plus
``HEADROOM`` of those errors is (why: ``workbench.search.confirm``). The sampler is told the same thing: a trial
whose loss is within ``max_loss`` but not with the headroom is infeasible to TPE, so that the search spends its
trials where a pick can come from (until 2026-12-01 TPE's feasible region was the plain budget, and on the MNIST
sample, budget 0.3 and an error of 0.2, most of its "feasible" front could never be picked).
"""

from __future__ import annotations

import math

HEADROOM = 1.0  # standard errors of the paired loss that must fit between a candidate's loss and the budget


def _error(se) -> float:
    return 0.0 if se is None or (isinstance(se, float) and math.isnan(se)) else float(se)


def over_budget(loss: float, se: float | None, max_loss: float) -> float:
    """``loss`` plus HEADROOM standard errors minus ``max_loss``: within the budget when <= 0 (an unknown error
    counts as 0). Optuna's constraint value."""
    return float(loss) + HEADROOM * _error(se) - float(max_loss)


def with_headroom(loss: float, se: float | None, max_loss: float) -> bool:
    """True when ``loss`` plus HEADROOM standard errors is within ``max_loss``."""
    return over_budget(loss, se, max_loss) <= 1e-9
