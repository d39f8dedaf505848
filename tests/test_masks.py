"""Mask maths and schedules against plain numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.config import PruneConfig
from workbench.errors import ConfigError
from workbench.pruning import masks, schedules
from workbench.pruning.api import compute_masks


def _reference_mask(scores, sparsity):
    k = int(np.floor(sparsity * scores.size + 0.5))
    order = np.argsort(scores.ravel(), kind="stable")
    keep = np.ones(scores.size)
    keep[order[:k]] = 0
    return keep.reshape(scores.shape)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_mask_for_sparsity_prunes_the_lowest_scores(rng, sparsity):
    scores = np.abs(rng.normal(size=(5, 5, 3, 8)))
    mask = masks.mask_for_sparsity(scores, sparsity)
    assert np.array_equal(mask, _reference_mask(scores, sparsity))
    assert masks.sparsity_of(mask) == pytest.approx(round(sparsity * scores.size) / scores.size)
    if 0 < sparsity:
        assert scores[mask == 0].max() <= scores[mask == 1].min()


def test_threshold_mask_and_threshold_for_sparsity(rng):
    scores = np.abs(rng.normal(size=(100, 10)))
    t = masks.threshold_for_sparsity(scores, 0.3)
    assert t == np.sort(scores.ravel())[299]
    mask = masks.mask_for_threshold(scores, t)
    assert np.array_equal(mask, (scores > t).astype(np.float32))
    assert masks.sparsity_of(mask) == pytest.approx(0.3)


def test_global_masks_rank_across_layers(rng):
    scores = {"a": rng.uniform(0, 1, (10, 10)), "b": rng.uniform(0.5, 1.5, (20,))}
    out = masks.global_masks(scores, 0.5)
    flat = np.concatenate([scores["a"].ravel(), scores["b"]])
    cut = np.sort(flat)[59]
    assert np.array_equal(out["a"], (scores["a"] > cut).astype(np.float32))
    assert np.array_equal(out["b"], (scores["b"] > cut).astype(np.float32))
    assert sum(int((m == 0).sum()) for m in out.values()) == 60


def test_compute_masks_per_layer_and_threshold_targets(rng):
    scores = {"conv1": rng.uniform(size=(5, 5, 1, 4)), "fc1": rng.uniform(size=(30, 10))}
    per_layer = compute_masks(scores, PruneConfig(target="per_layer", sparsity=0.5, layer_sparsity={"fc1": 0.9}))
    assert masks.sparsity_of(per_layer["conv1"]) == pytest.approx(0.5)
    assert masks.sparsity_of(per_layer["fc1"]) == pytest.approx(0.9)
    thresh = compute_masks(scores, PruneConfig(target="threshold", layer_threshold={"fc1": 0.25}))
    assert np.array_equal(thresh["fc1"], (scores["fc1"] > 0.25).astype(np.float32))
    assert thresh["conv1"].min() == 1.0


def test_filter_l1_norms_and_kept_filters(rng):
    kernel = rng.normal(size=(3, 3, 4, 6))
    norms = masks.filter_l1_norms(kernel)
    assert np.allclose(norms, [np.abs(kernel[..., j]).sum() for j in range(6)])
    keep = masks.filters_to_keep(kernel, 0.5)
    assert set(keep) == set(np.argsort(-norms)[:3])


def test_polynomial_schedule_matches_agp_formula():
    sched = schedules.PolynomialDecay(0.9, begin_step=10, end_step=110, frequency=10)
    for step in (10, 35, 60, 110, 500):
        p = min(1.0, (step - 10) / 100)
        assert sched.sparsity_at(step) == pytest.approx(0.9 * (1 - (1 - p) ** 3))
    assert sched.sparsity_at(0) == 0.0
    assert [s for s in range(0, 130) if sched.should_update(s)] == list(range(10, 111, 10))


def test_schedules_round_trip_through_registry():
    for sched in (schedules.OneShot(0.8, step=3), schedules.PolynomialDecay(0.5, 0, 100, 0.1, 2.0, 7)):
        again = schedules.get(schedules.serialize(sched))
        assert type(again) is type(sched) and again.get_config() == sched.get_config()
    with pytest.raises(ConfigError, match="Unknown pruning schedule"):
        schedules.get({"class_name": "cosine"})
    with pytest.raises(ConfigError, match="end_step"):
        schedules.PolynomialDecay(0.5, 10, 10)


def test_one_ranking_gives_the_masks_and_thresholds_of_a_fresh_sort_at_every_sparsity(rng):
    scores = np.round(rng.random((7, 9, 3)), 1).astype(np.float32)  # many ties: C order breaks them
    ranking = masks.Ranking(scores)
    for sparsity in (0.0, 0.013, 0.25, 0.5, 0.77, 0.99, 0.25):
        k = int(np.floor(sparsity * scores.size + 0.5))
        assert np.array_equal(ranking.mask(sparsity), _reference_mask(scores, sparsity))
        assert ranking.threshold(sparsity) == (np.sort(scores.ravel().astype(np.float64))[k - 1] if k else 0.0)


def test_the_partition_picks_the_same_weights_as_a_stable_sort_with_ties_and_nans(rng):
    scores = np.round(rng.random((11, 13)), 1)  # many ties, broken in C order
    scores[3, 4] = scores[7, 1] = np.nan
    flat = scores.ravel()
    for k in (0, 1, 5, 40, 77, 140, 142, 143, 150):
        expected = np.zeros(flat.size, dtype=bool)
        expected[np.argsort(flat, kind="stable")[:k]] = True
        assert np.array_equal(masks.lowest(flat, k), expected), k
    for sparsity in (0.0, 0.3, 0.97, 0.999):
        assert np.array_equal(masks.mask_for_sparsity(scores[:, :-1], sparsity),
                              _reference_mask(scores[:, :-1], sparsity))
    layers = {"a": np.round(rng.random((6, 5)), 1), "b": np.round(rng.random(17), 1)}
    both = np.concatenate([layers["a"].ravel(), layers["b"]])
    out = masks.global_masks(layers, 0.45)
    assert np.array_equal(np.concatenate([out["a"].ravel(), out["b"]]), _reference_mask(both, 0.45))
