"""workbench.search without a cluster: the space, the stopping rule, the time budget and its tail, the front,
the budget's headroom (the sampler's constraint and the confirmation), and resuming a journal.

The tiny search on real Dask workers is in test_search.py; the trial loop against the cluster's faults in
test_search_cluster.py.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError
from workbench.search import SearchSpace, pareto_mask
from workbench.search.engine import open_study
from workbench.search.space import warm_start_sparsities
from workbench.search.trial import recovery_table, should_stop


def test_pareto_mask_matches_a_brute_force(rng):
    size, acc = rng.integers(1, 20, 60), rng.integers(0, 10, 60) / 10
    keep = pareto_mask(size, acc)
    for i in range(60):
        beaten = any(size[j] <= size[i] and acc[j] >= acc[i] and (size[j] < size[i] or acc[j] > acc[i])
                     for j in range(60))
        assert keep[i] == (not beaten)
    assert keep.any()


def test_space_maps_parameters_to_configs_that_round_trip():
    space = SearchSpace(clusters=(0, 16))
    params = space.params_for({"conv1": 0.5, "fc1": 0.999}, bits={"conv1": 8, "fc1": 4}, activation_bits=8,
                              finetune_epochs=3, learning_rate=5e-4)
    assert params["density:fc1"] == pytest.approx(0.005)  # clipped into the space (99.5% at most)
    configs = space.configs(params, seed=2)
    assert configs["prune"].layer_sparsity == {"conv1": 0.5, "fc1": 0.995}
    assert configs["quant"].layer_weight_bits == {"conv1": 8, "fc1": 4}
    assert configs["finetune"] == TrainConfig(epochs=3, learning_rate=5e-4, seed=2)
    for key, cls in (("prune", PruneConfig), ("quant", QuantConfig), ("finetune", TrainConfig)):
        assert cls.from_json(configs[key].to_json()) == configs[key]
    assert SearchSpace.from_json(space.to_json()) == space


def test_space_samples_density_on_a_log_scale_within_bounds():
    space = SearchSpace()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    densities = []
    for _ in range(400):
        trial = study.ask()
        params = space.sample(trial, ["conv1", "fc1"])
        study.tell(trial, 0.0)
        densities.append(params["density:fc1"])
        assert params["bits:conv1"] in space.weight_bits and 2 <= params["finetune_epochs"] <= 8
    densities = np.array(densities)
    assert densities.min() >= 0.005 and densities.max() <= 1.0
    assert 0.35 < np.mean(densities < 0.07) < 0.65  # log-uniform: half the mass below sqrt(0.005)


@pytest.mark.parametrize("bad", [dict(min_density=0), dict(min_density=0.5, max_density=0.1),
                                 dict(weight_bits=(1, 4)), dict(weight_bits=[]), dict(finetune_epochs=(3, 1)),
                                 dict(learning_rate=(0, 1e-3)), dict(layers="fc9x", exclude=5)])
def test_space_refuses_bad_settings(bad):
    with pytest.raises(ConfigError, match="Received"):
        SearchSpace(**bad)


def test_warm_start_takes_the_largest_sparsity_within_the_tolerance():
    import pandas as pd

    scan = pd.DataFrame({"layer": ["a"] * 4 + ["b"] * 4, "sparsity": [0, 0.5, 0.9, 0.99] * 2,
                         "accuracy": [0.98, 0.978, 0.97, 0.5, 0.98, 0.90, 0.80, 0.2]})
    assert warm_start_sparsities(scan, 0.5) == {"a": 0.5, "b": 0.0}
    assert warm_start_sparsities(scan, 1.0) == {"a": 0.9, "b": 0.0}


def test_the_stopping_rule_learns_from_finished_trials():
    records = [{"state": "complete", "values": [1, 0.90], "intermediate": {"1": 0.80, "2": 0.89}},
               {"state": "complete", "values": [1, 0.95], "intermediate": {"1": 0.93, "2": 0.96}},
               {"state": "complete", "values": [1, 0.97], "intermediate": {"1": 0.96, "2": 0.975}},
               {"state": "pruned", "values": None, "intermediate": {"1": 0.1}}]
    table = recovery_table(records)
    assert table["finished"] == 3
    assert table[1] == pytest.approx(0.10) and table[0] == pytest.approx(0.01)
    # 0.80 + 0.10 recovery reaches 0.90: keep; 0.70 cannot reach 0.90 even with the best recovery: stop.
    assert not should_stop(1, 2, 0.80, 0.90, table)
    assert should_stop(1, 2, 0.70, 0.90, table)
    assert not should_stop(1, 2, 0.10, 0.90, recovery_table(records[:2]))  # too few finished trials to judge
    losing = [{"state": "complete", "values": [1, 0.90], "intermediate": {"1": 0.95, "2": 0.95}}] * 3  # all lost 5
    assert recovery_table(losing)[1] == pytest.approx(-0.05)
    assert not should_stop(1, 2, 0.91, 0.90, recovery_table(losing))  # a further loss is not predicted
    assert should_stop(1, 2, 0.897, 0.90, recovery_table(losing))  # below the budget by more than the margin


def test_a_search_whose_trials_all_stop_early_lets_the_next_one_finish():
    from workbench.search.api import STARVED_AFTER, starving

    records = {n: {"state": "complete"} for n in range(3)}
    records.update({n: {"state": "pruned"} for n in range(3, 3 + STARVED_AFTER - 1)})
    assert not starving(records)
    records[99] = {"state": "pruned"}
    assert starving(records)
    records[100] = {"state": "complete"}
    assert not starving(records)


def test_the_time_budget_counts_from_the_call():
    from workbench.search.api import trials_deadline

    assert trials_deadline(60, spent_s=21 * 60, now=1000.0) == 1000.0 + 39 * 60  # a 21-minute baseline
    assert trials_deadline(10, spent_s=15 * 60, now=1000.0) == 1000.0  # spent already: no trial starts
    assert trials_deadline(None, spent_s=5.0) is None


def test_the_time_left_after_the_last_trial_starts_is_sized_from_finished_trials():
    from workbench.search.engine import TAIL_MARGIN, tail_seconds

    assert tail_seconds([], slots=2, runs=15) == 0.0  # nothing measured yet
    durations = [50.0] * 9 + [200.0]  # nearest-rank 90th percentile of ten: the ninth, 50 s
    # the running trials (one round), then 12 confirmation runs and 3 final seeds on 2 workers: 8 rounds
    assert tail_seconds(durations, slots=2, runs=15) == pytest.approx(TAIL_MARGIN * 50.0 * (1 + 8))
    assert tail_seconds(durations + [300.0], slots=2, runs=15) == pytest.approx(TAIL_MARGIN * 200.0 * 9)
    assert tail_seconds(durations, slots=4, runs=3, inflight=False) == pytest.approx(TAIL_MARGIN * 50.0)
    assert tail_seconds([None, float("nan"), 60.0], slots=1, runs=0) == pytest.approx(TAIL_MARGIN * 60.0)


def test_the_tail_counts_each_planned_run_as_long_as_its_own_trial():
    from workbench.search.engine import TAIL_MARGIN, makespan, planned_tail_seconds, tail_seconds

    assert makespan([], slots=2) == 0.0 and makespan([5.0], slots=3) == 5.0
    assert makespan([134, 134, 89, 89], slots=2) == 223.0  # two workers, longest first to the least busy
    assert makespan([134] * 3, slots=2) == 268.0
    assert makespan([3, 3, 2, 2, 2], slots=2) == 7.0  # greedy, as Dask hands out tasks: 3+2+2 | 3+2, not 6
    assert planned_tail_seconds([], 2, [10.0], [10.0]) == 0.0  # nothing measured yet
    # auto-lenet5-fashion at ec17e53: trials of 2 to 10 epochs (90th percentile 211 s), candidates 26 (89 s) and
    # 6 (134 s) with 2 fresh seeds each, then 3 final seeds of the longer: 877 s, where counting all 15 runs of
    # two batches at the percentile reserved 2,372 s and stopped trials after 22 of 60 minutes
    durations = [60.0] * 8 + [211.0, 213.0]
    tail = planned_tail_seconds(durations, 2, [134, 134, 89, 89], [134] * 3)
    assert tail == pytest.approx(TAIL_MARGIN * (211 + 223 + 268))
    assert tail < tail_seconds(durations, slots=2, runs=15) / 2
    assert planned_tail_seconds(durations, 2, [134, 134], [134] * 3, inflight=False) == pytest.approx(
        TAIL_MARGIN * (134 + 268))


def test_the_summary_says_when_the_budget_is_within_the_validation_noise():
    import pandas as pd

    from workbench.search.report import SearchReport
    from workbench.stats import resolution

    def summary(max_loss):
        noise = {**resolution(0.98875, 800)}
        noise["max_loss_within_noise"] = max_loss < noise["se_points"]
        return SearchReport(trials=pd.DataFrame(), pareto=pd.DataFrame(), pick=None, baseline={},
                            settings={"max_loss": max_loss, "validation_noise": noise}, counts={}).summary()

    assert "below the validation split's standard error (±0.37 points on 800 images)" in summary(0.3)
    assert "standard error" not in summary(1.0)


def test_the_sampler_counts_a_trial_within_the_budget_only_with_the_picks_headroom(tmp_path):
    """The constraint TPE sees is the confirmation's rule: loss + 1 paired standard error within max_loss."""
    from workbench.search.budget import over_budget, with_headroom
    from workbench.search.confirm import candidates
    from workbench.search.engine import tell

    study, _ = open_study(str(tmp_path / "j.log"), "s", 0, resume=False)
    told = []
    for accuracy, se in ((0.980, 0.2), (0.982, 0.2), (0.980, None)):  # baseline 0.9835: losses 0.35, 0.15, 0.35
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        record = {"state": "complete", "values": [1000.0, accuracy], "paired": {"se_points": se}}
        tell(study, trial, record, baseline_validation=0.9835, max_loss=0.3)
        told.append(study.trials[-1].constraints["validation_loss_over_budget"])
    assert told == pytest.approx([0.25, 0.05, 0.05])  # over the budget by loss + se - 0.3: all infeasible
    assert over_budget(0.1, 0.2, 0.3) == pytest.approx(0.0) and with_headroom(0.1, 0.2, 0.3)
    assert not with_headroom(0.1, 0.2004, 0.3) and with_headroom(0.3, float("nan"), 0.3)
    front = __import__("pandas").DataFrame({"trial": [1, 2], "gzip_bytes": [900, 1000], "loss_points": [0.15, 0.1],
                                            "val_accuracy": [0.982, 0.9825], "se_points": [0.2, 0.2],
                                            "within_budget": [True, True]})
    assert candidates(front, max_loss=0.3) == [2]  # the confirmation takes what the sampler counts as feasible


def test_resume_marks_running_trials_failed_and_runs_them_again(tmp_path):
    journal = str(tmp_path / "j.log")
    study, _ = open_study(journal, "s", 0, resume=False)
    done = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(done, [1.0, 0.5])
    running = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # the client dies here
    with pytest.raises(ConfigError, match="resume"):
        open_study(journal, "s", 0, resume=False)
    study, retried = open_study(journal, "s", 0, resume=True)
    assert retried == [running.number]
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "WAITING"]
    assert study.trials[2].params == {} and study.trials[2].user_attrs["retry_of"] == running.number


def test_the_space_can_search_removing_whole_neurons():
    space = SearchSpace(structured={"fc1": 0.9})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    params = space.sample(trial, ["conv1", "fc1"])
    assert 0.0 <= params["structured:fc1"] <= 0.9
    assert space.configs(params)["prune"].structured == {"fc1": round(params["structured:fc1"], 4)}
    assert space.configs(space.params_for({"fc1": 0.5}))["prune"].structured == {}
    with pytest.raises(ConfigError, match="structured"):
        SearchSpace(structured={"fc1": 1.5})


def test_a_low_fidelity_trial_plans_its_confirmation_and_final_runs_at_full_length():
    from workbench.search.engine import full_fidelity_seconds

    # a MobileNet trial on a quarter of the images: 240 s of fine-tune and QAT, 60 s of pruning, export, int8 pass
    seconds = {"prune": 5.0, "finetune": 200.0, "qat": 40.0, "export": 15.0, "total": 300.0}
    assert full_fidelity_seconds(seconds, 0.25) == pytest.approx(60.0 + 4 * 240.0)
    assert full_fidelity_seconds(seconds, 1.0) == 300.0
    assert full_fidelity_seconds({"finetune": 3.0}, 0.5) is None  # a trial with no total says nothing
    assert full_fidelity_seconds({"total": 10.0}, 0.5) == 10.0  # no training stage timed: nothing scales
    with pytest.raises(ValueError, match="Received"):
        full_fidelity_seconds(seconds, 0.0)


def test_confirmation_batches_fill_the_workers_once():
    from workbench.search.confirm import batch_size

    assert batch_size(slots=2, fresh_seeds=2) == 1  # one candidate, its two seeds on the two workers
    assert batch_size(slots=2, fresh_seeds=1) == 2
    assert batch_size(slots=16, fresh_seeds=2) == 8
    assert batch_size(slots=1, fresh_seeds=2) == 1 and batch_size(slots=4, fresh_seeds=0) == 4


def test_the_budget_keeps_room_for_more_confirmation_batches_when_they_are_cheap():
    from workbench.search.confirm import MAX_CANDIDATES, reserved_batches

    # LeNet-5: a batch (one candidate, two seeds on two workers) takes about 70 s; a tenth of 60 minutes holds 5
    assert reserved_batches(70.0, 3600.0, per_batch=1) == 5
    # MobileNet: a batch of about 5 minutes in 105 minutes: the two batches always kept
    assert reserved_batches(300.0, 105 * 60.0, per_batch=1) == 2
    # never more batches than the candidates that can be confirmed
    assert reserved_batches(1.0, 3600.0, per_batch=1) == MAX_CANDIDATES
    assert reserved_batches(1.0, 3600.0, per_batch=4) == 3  # 9 candidates, 4 at a time
    # no time budget, or nothing measured yet: the two batches
    assert reserved_batches(70.0, None, 1) == reserved_batches(None, 3600.0, 1) == reserved_batches(0.0, 60.0, 1) == 2


def test_a_trial_at_lower_fidelity_trains_on_a_stratified_share_and_keeps_validation_whole(mnist):
    from workbench.search.trial import with_fidelity

    data = mnist.subset(train=1000, validation=300, test=300)
    assert with_fidelity(data, 1.0) is data
    low = with_fidelity(data, 0.25)
    assert len(low.y_train) == 250 and len(low.y_val) == 300 and len(low.y_test) == 300
    counts, full = np.bincount(low.y_train, minlength=10), np.bincount(data.y_train, minlength=10)
    assert np.all(np.abs(counts - full * 0.25) <= 1.0)  # each class in proportion
    again = with_fidelity(data, 0.25)
    np.testing.assert_array_equal(again.x_train, low.x_train)  # the same images in every trial
    assert len(with_fidelity(data, 0.001).y_train) == 10  # at least one image per class
    with pytest.raises(ValueError, match="Received"):
        with_fidelity(data, 1.5)


def test_a_hand_tuned_recipe_maps_into_the_space_to_start_the_search():
    space = SearchSpace(finetune_epochs=(1, 3), learning_rate=(1e-4, 1e-3), weight_bits=(2, 4, 8),
                        structured={"conv_pw_7": 0.5})
    layers = ["conv_pw_1", "conv_pw_7", "conv_pw_12"]
    recipe = {"prune": {"target": "per_layer", "sparsity": 0.8, "layer_sparsity": {"conv_pw_1": 0.5},
                        "structured": {"conv_pw_7": 0.5}},
              "quant": {"weight_bits": 8, "layer_weight_bits": {"conv_pw_12": 4}},
              "finetune": TrainConfig(epochs=6, learning_rate=3e-4)}
    params = space.params_from(layers, **recipe)
    assert params["density:conv_pw_1"] == pytest.approx(0.5) and params["density:conv_pw_7"] == pytest.approx(0.2)
    assert params["bits:conv_pw_12"] == 4 and params["bits:conv_pw_1"] == 8
    assert params["structured:conv_pw_7"] == 0.5
    assert params["finetune_epochs"] == 3 and params["learning_rate"] == pytest.approx(3e-4)  # clipped into the space
    configs = space.configs(params)  # and back: the settings the recipe asked for, where the space allows them
    assert configs["prune"].layer_sparsity == {"conv_pw_1": 0.5, "conv_pw_7": 0.8, "conv_pw_12": 0.8}
    assert configs["prune"].structured == {"conv_pw_7": 0.5}
    assert configs["quant"].layer_weight_bits == {"conv_pw_1": 8, "conv_pw_7": 8, "conv_pw_12": 4}
    with pytest.raises(ConfigError, match="leaves whole"):
        space.params_from(layers, prune={"target": "per_layer", "structured": {"conv_pw_8": 0.5}})
    with pytest.raises(ConfigError, match="global magnitude"):
        space.params_from(layers, prune={"sparsity": 0.5})
    with pytest.raises(ConfigError, match="Received"):
        space.params_from(layers, prune=["not", "a", "config"])
