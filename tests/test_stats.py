"""workbench.stats against direct computations (math.comb, the statistics module)."""

import math
import statistics

import pytest

from workbench.stats import mcnemar_exact, spread, wilson_interval


@pytest.mark.parametrize("b, c", [(0, 0), (3, 3), (1, 9), (12, 40), (40, 12), (0, 25)])
def test_mcnemar_matches_the_binomial_sum(b, c):
    n = b + c
    expected = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n)
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)


def test_wilson_stays_inside_zero_one_at_the_edges():
    low, high = wilson_interval(0, 50)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(3.8415 / 53.8415, rel=1e-4)
    low, high = wilson_interval(50, 50)
    assert high == pytest.approx(1.0, abs=1e-12) and low == pytest.approx(50 / 53.8415, rel=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_spread_matches_the_statistics_module():
    values = [63.9, 62.7, 65.1]
    s = spread(values)
    assert s["mean"] == pytest.approx(statistics.fmean(values))
    assert s["std"] == pytest.approx(statistics.stdev(values))
    assert (s["min"], s["max"], s["values"]) == (62.7, 65.1, values)
    assert spread([2])["std"] == 0.0
    with pytest.raises(ValueError, match="Received: an empty sequence"):
        spread([])
