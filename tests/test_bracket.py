"""The search's warm start: tolerance -> per-layer sparsity, and the bracketing of the tolerance."""

import math

import pandas as pd
import pytest

from workbench.search import bracket
from workbench.search.bracket import allocate, next_tolerance

SCAN = pd.DataFrame({"layer": ["a"] * 4 + ["b"] * 4, "sparsity": [0, 0.5, 0.9, 0.99] * 2,
                     "accuracy": [0.98, 0.978, 0.97, 0.5, 0.98, 0.90, 0.80, 0.2]})


def test_allocate_interpolates_in_log_density_between_scanned_sparsities():
    # layer a loses 0.2 points at 50% and 1.0 at 90%: 0.6 points is half way between, in log density
    expected = 1 - math.exp((math.log(0.5) + math.log(0.1)) / 2)
    assert allocate(SCAN, 0.6)["a"] == pytest.approx(expected, abs=1e-6)
    assert allocate(SCAN, 0.2)["a"] == pytest.approx(0.5, abs=1e-6)  # exactly a scanned point
    assert allocate(SCAN, 100.0) == {"a": 0.99, "b": 0.99}  # beyond every loss: the largest scanned sparsity
    # b loses 8 points at 50%: a 4-point tolerance keeps it within its first interval
    assert allocate(SCAN, 4.0)["b"] == pytest.approx(1 - math.exp(0.5 * math.log(0.5)), abs=1e-6)


def test_allocate_is_monotone_even_when_the_scan_is_not():
    scan = pd.DataFrame({"layer": ["c"] * 4, "sparsity": [0, 0.5, 0.7, 0.9],
                         "accuracy": [0.90, 0.85, 0.89, 0.80]})  # 70% scored better than 50%
    values = [allocate(scan, t)["c"] for t in (1, 3, 5, 6, 9, 11)]
    assert values == sorted(values)
    assert values[1] == pytest.approx(1 - 0.5 ** 0.6, abs=1e-6)  # 3 of the first 5 points: 60% of the way
    assert values[2] == pytest.approx(0.7, abs=1e-6)  # 70% counts as losing 5 points (the running maximum)
    assert 0.7 < values[3] < values[4] < values[5] == 0.9
    with pytest.raises(ValueError, match="Received"):
        allocate(scan, 0)


def test_bracketing_grows_until_a_trial_misses_then_bisects_on_a_log_scale():
    assert next_tolerance([], [], 0) == bracket.START
    assert next_tolerance([], [2.0], 1) == 2.0 * bracket.GROW  # a second slot explores further out
    assert next_tolerance([(2.0, True)], [8.0], 2) == 32.0
    assert next_tolerance([(2.0, True), (8.0, False)], [], 2) == 4.0
    assert next_tolerance([(2.0, True), (8.0, False)], [4.0], 3) == pytest.approx(math.sqrt(32), abs=1e-4)
    assert next_tolerance([(2.0, False)], [], 1) == 0.5
    assert next_tolerance([(2.0, True), (2.5, False)], [], 2) is None  # settled: 2.5 / 2 < 1.3
    assert next_tolerance([(2.0, True), (8.0, False)], [], bracket.MAX_STEPS) is None


def test_bracketing_stops_at_the_ends_of_the_scale_and_never_repeats_a_tolerance():
    assert next_tolerance([(0.1, False)], [], 1) is None  # 0.025 changes nothing more
    assert next_tolerance([(100.0, True)], [], 1) is None  # 400 likewise
    # a running trial splits the bracket: the wider part (2 to 4.1, on a log scale) is bisected
    assert next_tolerance([(2.0, True), (8.0, False)], [4.1], 3) == pytest.approx(math.sqrt(2 * 4.1), abs=1e-4)
    assert next_tolerance([(2.0, True), (8.0, False)], [3.9], 3) == pytest.approx(math.sqrt(3.9 * 8), abs=1e-4)
    assert next_tolerance([(4.0, True)], [16.0, 64.0], 3) is None  # 256: beyond the scale
    assert next_tolerance([(4.0, True)], [16.0], 2) == 64.0
    assert next_tolerance([(4.0, True), (6.0, False)], [4.9], 3) is None  # both halves narrower than 1.3x


def test_confirmation_keeps_the_smallest_candidate_whose_fresh_runs_stay_within_the_budget():
    from workbench.search import confirm

    front = pd.DataFrame({"trial": [4, 7, 9, 2], "gzip_bytes": [900, 300, 500, 100],
                          "val_accuracy": [0.95, 0.94, 0.93, 0.80], "within_budget": [True, True, True, False]})
    assert confirm.candidates(front) == [7, 9, 4]  # within the budget, smallest first
    runs = [{"state": "complete", "seed": 1, "values": [300, 0.935]},
            {"state": "complete", "seed": 2, "values": [300, 0.925]}, {"state": "fail", "seed": 3}]
    verdict = confirm.judge(7, runs, baseline_validation=0.94, max_loss=1.0)
    assert verdict["val_loss_points"] == [0.5, 1.5] and verdict["mean_loss_points"] == pytest.approx(1.0)
    assert verdict["passed"] and verdict["seeds"] == [1, 2] and verdict["failed_seeds"] == [3]
    assert not confirm.judge(7, runs, baseline_validation=0.94, max_loss=0.9)["passed"]
    assert not confirm.judge(7, [{"state": "pruned", "seed": 1}], 0.94, 5.0)["passed"]  # nothing finished
    # with the paired standard error of each run, the mean must clear the budget by one error
    runs = [{**r, "paired": {"se_points": se}} for r, se in zip(runs[:2], (0.2, 0.4))] + runs[2:]
    verdict = confirm.judge(7, runs, baseline_validation=0.94, max_loss=1.3)
    assert verdict["se_points"] == pytest.approx(0.3) and verdict["passed"]  # 1.0 + 0.3 <= 1.3
    assert not confirm.judge(7, runs, baseline_validation=0.94, max_loss=1.25)["passed"]
    # candidates need that headroom in their own search value too (an unknown error counts as none)
    front["loss_points"], front["se_points"] = [0.1, 0.9, 0.5, 9.0], [0.2, 0.2, float("nan"), 0.2]
    assert confirm.candidates(front, max_loss=1.0) == [9, 4]  # 0.9 + 0.2 > 1.0
    assert confirm.candidates(front, max_loss=0.2) == []
    verdicts = [{"trial": 7, "passed": False}, {"trial": 9, "passed": True}, {"trial": 4, "passed": True}]
    assert confirm.chosen(verdicts) == 9 and confirm.chosen(verdicts[:1]) is None
