"""Statistics for honest reports: Wilson intervals for accuracies, McNemar's exact test for paired deltas.

Wilson (1927) gives a 95% interval for a proportion that stays inside [0, 1] and behaves at
98-99% accuracy, where the normal approximation does not. McNemar's exact test compares two
classifiers on the *same* images: only the images where exactly one of them is right count,
and under the null hypothesis those split 50/50 (a two-sided binomial test).
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of ``correct / total``; (nan, nan) for no examples."""
    if total <= 0:
        return (math.nan, math.nan)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` images only model A got right and ``c`` only model B did."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # P(X <= k) for X ~ Binomial(n, 1/2), computed in log space to stay exact for large n.
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(v - top) for v in logs)
    return min(1.0, 2.0 * tail)


def accuracy_with_interval(correct: np.ndarray) -> dict:
    """{'accuracy', 'ci95', 'n'} from a boolean array of per-image correctness."""
    correct = np.asarray(correct, dtype=bool)
    n, k = int(correct.size), int(correct.sum())
    return {"accuracy": k / n if n else math.nan, "ci95": list(wilson_interval(k, n)), "n": n}


def paired_delta(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Accuracy of B minus A on the same images, with McNemar's exact p-value.

    Returns {'delta_points', 'only_a', 'only_b', 'p_value', 'se_points', 'n'}: ``se_points`` is the standard
    error of the delta (``paired_se_points``).
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired_delta needs predictions on the same images. Received: {a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = int(a.size)
    return {"delta_points": 100.0 * (only_b - only_a) / n if n else math.nan, "only_a": only_a, "only_b": only_b,
            "p_value": mcnemar_exact(only_a, only_b), "se_points": paired_se_points(only_a, only_b, n), "n": n}


def paired_se_points(only_a: int, only_b: int, n: int) -> float:
    """The standard error, in points, of the accuracy difference of two models measured on the same ``n`` images,
    of which ``only_a`` only model A got right and ``only_b`` only model B: the per-image difference is -1, 0 or
    +1, and the error is its sample standard deviation over sqrt(n). Two models that rarely disagree are compared
    far more finely than either accuracy alone is measured (``resolution``); nan for fewer than 2 images."""
    if only_a < 0 or only_b < 0 or only_a + only_b > max(n, 0):
        raise ValueError(f"paired_se_points needs 0 <= only_a + only_b <= n. Received: only_a={only_a}, "
                         f"only_b={only_b}, n={n}")
    if n < 2:
        return math.nan
    mean = (only_b - only_a) / n
    variance = ((only_a + only_b) / n - mean * mean) * n / (n - 1)
    return 100.0 * math.sqrt(max(variance, 0.0) / n)


def spread(values) -> dict:
    """Mean, sample standard deviation (0 for one value), min, max and the values themselves: how figures
    repeated over seeds are reported (bench rows, the search's final runs)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("spread() needs at least one value. Received: an empty sequence")
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def resolution(accuracy: float, images: int) -> dict:
    """How finely a split of ``images`` resolves an accuracy near ``accuracy``, in percentage points: one image,
    and the binomial standard error. A loss budget below the standard error is within the split's noise."""
    if images <= 0 or not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"resolution() needs images > 0 and an accuracy in [0, 1]. Received: images={images!r}, "
                         f"accuracy={accuracy!r}")
    return {"images": int(images), "one_image_points": 100.0 / images,
            "se_points": 100.0 * math.sqrt(accuracy * (1.0 - accuracy) / images)}
