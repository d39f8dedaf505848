"""The search's warm start: one global knob, bracketed, before TPE takes over.

A per-layer sensitivity scan (each layer pruned alone, no retraining, on validation) says how much
accuracy each layer loses at each sparsity. ``allocate`` turns one number, the *tolerance* (points a
layer may lose in that scan), into a sparsity per layer: sensitive layers stay dense, robust ones are
pruned hard. Fine-tuning recovers much of a scan's loss, so the tolerance that ends within the
search's accuracy budget is not known in advance; it is found by bracketing (``next_tolerance``):
double or quarter it until one trial ends within the budget and one does not, then bisect on a log
scale. Those trials give TPE a history along the budget's boundary instead of random starts, most of
which are destroyed models (a log-uniform density per layer is mostly very sparse).

Pure maths on plain values; the search (``workbench.search.api``) enqueues the trials.
"""

from __future__ import annotations

import math

START = 2.0  # points: the first bracketing trial's tolerance
GROW = 4.0  # factor while no trial has ended over (or within) the budget
LOWEST, HIGHEST = 0.05, 200.0  # tolerances outside these change nothing more
CLOSE = 1.3  # a bracket narrower than this ratio is settled
MAX_STEPS = 8  # bracketing trials at most; TPE has the rest of the budget


def allocate(scan, tolerance: float) -> dict:
    """Per layer, the sparsity at which its scan loss reaches ``tolerance`` points.

    The loss is made monotone in sparsity (its running maximum), and interpolated linearly in
    log-density between scanned sparsities, so that every tolerance gives its own allocation.
    ``scan``: the DataFrame of ``sensitivity_scan`` (layer, sparsity, accuracy); each layer's best
    accuracy is its reference.
    """
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0 points. Received: tolerance={tolerance!r}")
    chosen = {}
    for name, rows in scan.groupby("layer", sort=False):
        rows = rows.sort_values("sparsity")
        reference = float(rows["accuracy"].max())
        sparsity = [float(s) for s in rows["sparsity"]]
        loss, worst = [], 0.0
        for acc in rows["accuracy"]:
            worst = max(worst, (reference - float(acc)) * 100.0)
            loss.append(worst)
        if loss[0] > tolerance + 1e-9:
            chosen[name] = 0.0
            continue
        chosen[name] = sparsity[-1]
        for i in range(1, len(sparsity)):
            if loss[i] > tolerance + 1e-9:
                a, b = _log_density(sparsity[i - 1]), _log_density(sparsity[i])
                t = (tolerance - loss[i - 1]) / (loss[i] - loss[i - 1])
                chosen[name] = round(1.0 - math.exp(a + t * (b - a)), 6)
                break
    return chosen


def _log_density(sparsity: float) -> float:
    return math.log(max(1.0 - sparsity, 1e-6))


def next_tolerance(outcomes: list, running: list, steps_used: int) -> float | None:
    """The next bracketing trial's tolerance, or None when the bracket is settled (or its steps spent).

    ``outcomes``: (tolerance, within_budget) of the finished bracketing trials (a trial stopped early
    for missing the budget counts as not within it; failed trials are left out). ``running``: the
    tolerances of bracketing trials still running (no second trial is proposed next to one).
    """
    if steps_used >= MAX_STEPS:
        return None
    within = [t for t, ok in outcomes if ok]
    over = [t for t, ok in outcomes if not ok]
    low = max(within) if within else None
    high = min((t for t in over if low is None or t > low), default=None)
    if low is None and high is None:
        proposal = START if not running else max(running) * GROW
    elif high is None:  # everything so far was within the budget: be bolder
        proposal = max([low, *running]) * GROW
    elif low is None:  # nothing was: be gentler
        proposal = min([high, *running]) / GROW
    else:
        points = sorted({low, high, *(t for t in running if low < t < high)})
        gaps = [(math.log(b / a), a, b) for a, b in zip(points, points[1:])]
        width, a, b = max(gaps)
        if width < math.log(CLOSE):
            return None
        proposal = math.sqrt(a * b)
    if not LOWEST <= proposal <= HIGHEST:
        return None
    if any(abs(math.log(proposal / t)) < math.log(CLOSE) / 2 for t in [*running, *(t for t, _ in outcomes)]):
        return None
    return round(proposal, 4)
