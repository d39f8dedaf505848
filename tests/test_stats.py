"""workbench.stats against direct computations (math.comb, the statistics module)."""

import math
import statistics

import pytest

import numpy as np

from workbench.stats import mcnemar_exact, paired_delta, paired_se_points, resolution, spread, wilson_interval


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


def test_resolution_is_one_image_and_the_binomial_standard_error_in_points():
    r = resolution(0.98875, 800)  # LeNet-5's validation accuracy on the bundled MNIST sample's 800 images
    assert r["images"] == 800 and r["one_image_points"] == pytest.approx(0.125)
    assert r["se_points"] == pytest.approx(100 * statistics.pstdev([1] * 791 + [0] * 9) / math.sqrt(800))
    assert r["se_points"] > 0.3  # so a 0.3-point budget there is within the noise
    assert resolution(1.0, 50)["se_points"] == 0.0
    for images, accuracy in ((0, 0.5), (10, 1.5), (10, -0.1)):
        with pytest.raises(ValueError, match="Received"):
            resolution(accuracy, images)


def test_paired_standard_error_is_the_per_image_differences_standard_error():
    rng = np.random.default_rng(3)
    base = rng.random(6000) < 0.91
    other = base.copy()
    flip = rng.choice(6000, 180, replace=False)  # the two models disagree on 3% of the images
    other[flip] = ~other[flip]
    delta = paired_delta(base, other)
    diff = other.astype(float) - base.astype(float)
    assert delta["delta_points"] == pytest.approx(100 * diff.mean())
    assert delta["se_points"] == pytest.approx(100 * diff.std(ddof=1) / math.sqrt(6000), rel=1e-9)
    assert 0.15 < delta["se_points"] < 0.25  # far finer than either accuracy's own error on 6,000 images
    assert delta["se_points"] < resolution(base.mean(), 6000)["se_points"] / 1.5
    assert paired_se_points(0, 0, 100) == 0.0 and math.isnan(paired_se_points(0, 0, 1))
    with pytest.raises(ValueError, match="Received: only_a=60, only_b=50, n=100"):
        paired_se_points(60, 50, 100)
