"""workbench.search: a tiny search on real Dask workers (LeNet-5, 1,000 bundled digits, 1 fine-tune epoch).

Checked: the Pareto front against a brute force over the stored trials, the pick against the budget,
compress() reproducing the pick, a trial that raises, a worker killed mid-trial, and a client killed
mid-search then resumed. Units of the space, the stopping rule and the front run without a cluster.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import optuna
import pytest

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError
from workbench.search import SearchSpace, pareto_mask
from workbench.search.engine import open_study
from workbench.search.space import warm_start_sparsities
from workbench.search.trial import recovery_table, should_stop

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = SearchSpace(finetune_epochs=(1, 1), qat_epochs=0, activation_bits=(8,))


@pytest.fixture(scope="module")
def tiny_data(mnist):
    return mnist.subset(train=1000, validation=300, test=300)


@pytest.fixture(scope="module")
def tiny_baseline(tiny_data):
    from workbench.models import lenet5
    from workbench.train import fit

    model = lenet5()
    fit(model, (tiny_data.x_train, tiny_data.y_train), TrainConfig(epochs=3, learning_rate=2e-3))
    return model


# -- units -----------------------------------------------------------------------------------------------------
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


def test_search_refuses_bad_budgets_before_any_work(tiny_data):
    import workbench as wb

    for kwargs in (dict(trials=None, minutes=None), dict(trials=0), dict(max_loss=-1), dict(workers=0),
                   dict(minutes=float("nan")), dict(final_seeds=(-1,))):
        with pytest.raises(ConfigError, match="Received"):
            wb.search("lenet5", tiny_data, **{"trials": 2, **kwargs})


# -- on a cluster ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_search(tiny_data, tiny_baseline, tmp_path_factory):
    import workbench as wb

    out = tmp_path_factory.mktemp("search") / "out"
    seen = []
    # minutes too: before each start the deadline plans the tail from the candidates (trials=5 ends it first)
    report = wb.search(tiny_baseline, tiny_data, max_loss=3.0, trials=5, minutes=30, workers=2, out_dir=out, space=TINY,
                       final_seeds=(0, 1), on_trial=lambda n, rec, frame: seen.append((n, rec["state"])))
    return report, out, seen


def stored_trials(journal: pathlib.Path) -> list:
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


@pytest.mark.slow
def test_a_tiny_search_finishes_with_a_non_dominated_front(tiny_search):
    report, out, seen = tiny_search
    assert report.counts["total"] == 5 and len(seen) == 5 and len({n for n, _ in seen}) == 5
    assert report.counts["complete"] >= 3, report.trials[["trial", "state", "error"]]
    trials = stored_trials(out / "study.journal")  # the published journal, read back with Optuna itself
    # from the sensitivity scan: one safe trial, then bracketing trials, each at its own tolerance
    assert [t.number for t in trials if t.user_attrs.get("warm_start") is not None] == [0]
    tolerances = [t.user_attrs["bracket"] for t in trials if t.user_attrs.get("bracket") is not None]
    assert tolerances and len(set(tolerances)) == len(tolerances)
    assert trials[0].params["bits:conv2"] == 8 and all(
        t.params["bits:conv2"] == 4 for t in trials if t.user_attrs.get("bracket") is not None)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    front = {t.number for t in done
             if not any(o.values[0] <= t.values[0] and o.values[1] >= t.values[1] and o.values != t.values
                        for o in done)}
    assert set(report.pareto["trial"]) == front
    csv = (out / "pareto.csv").read_text().splitlines()
    assert len(csv) == len(front) + 1 and csv[0].startswith("trial,state,gzip_bytes")
    assert json.loads((out / "search_report.json").read_text())["counts"]["total"] == 5
    assert "Receive client connection" in (out / "cluster.log").read_text()  # the embedded scheduler's messages
    noise = report.settings["validation_noise"]  # 300 validation images resolve the 3-point budget
    assert noise["images"] == 300 and not noise["max_loss_within_noise"] and "Note:" not in report.summary()
    assert noise["se_points"] == pytest.approx(100 * (report.baseline["validation"]
                                                      * (1 - report.baseline["validation"]) / 300) ** 0.5)


@pytest.mark.slow
def test_the_pick_is_the_smallest_trial_within_the_budget(tiny_search):
    report, out, _ = tiny_search
    assert report.pick is not None, report.trials
    feasible = report.pick["confirmation"]  # the front's trials within the budget, smallest first, re-run (seed 1)
    front = report.pareto[report.pareto["within_budget"].astype(bool)  # ... with a standard error of headroom
                          & (report.pareto["loss_points"] + report.pareto["se_points"] <= 3.0)].sort_values("gzip_bytes")
    assert [v["trial"] for v in feasible] == [int(t) for t in front["trial"][:len(feasible)]]
    at = [v["trial"] for v in feasible].index(report.pick["trial"])  # they are confirmed 3 at a time
    assert feasible[at]["passed"] and all(not v["passed"] for v in feasible[:at])  # every smaller one failed
    assert len(feasible) <= at + 3 and all(v["seeds"] == [1] for v in feasible)
    assert feasible[at]["mean_loss_points"] + feasible[at]["se_points"] <= 3.0  # within the budget by an error
    assert 0 < feasible[at]["se_points"] < 3.0
    assert report.pareto["se_points"].notna().all()
    assert f"Fine-tuned again with seeds [1], it lost {feasible[at]['mean_loss_points']:+.2f} points" in report.summary()
    assert report.pick["loss_points"] <= 3.0
    final = report.pick["test"]
    assert final["seeds"] == [0, 1] and 0 <= final["int8"]["mean"] <= 1
    lo, hi = final["ci95"][0]
    assert lo <= final["int8"]["mean"] <= hi
    artifact = (out / "pick" / "model_int8.tflite").read_bytes()
    pick_report = json.loads((out / "pick" / "report.json").read_text())
    import hashlib

    assert hashlib.sha256(artifact).hexdigest() == pick_report["tflite_sha256"]
    assert pick_report["settings"]["prune"]["layer_sparsity"] == report.pick_configs()["prune"].layer_sparsity


@pytest.mark.slow
def test_compress_with_the_picks_configs_reproduces_its_size(tiny_search, tiny_data, tiny_baseline):
    import workbench as wb

    report, _, _ = tiny_search
    configs = report.pick_configs()
    again = wb.compress(tiny_baseline, tiny_data, prune=configs["prune"], quant=configs["quant"],
                        finetune=configs["finetune"], qat=configs["qat"])
    assert abs(again.sizes["gzip_bytes"] - report.pick["gzip_bytes"]) <= 0.03 * report.pick["gzip_bytes"]
    assert again.settings["prune"]["layer_sparsity"] == configs["prune"].layer_sparsity


@pytest.mark.slow
def test_a_failing_trial_and_a_killed_worker_cost_one_trial_each(tiny_data, tiny_baseline, tmp_path):
    """On a cluster of the test's own (reached by address, as a real cluster would be): trial 1 raises on
    its worker, and a worker process is killed while trials run. The study still tells every trial once."""
    import dask
    from distributed import Client, LocalCluster

    import workbench as wb

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, env={"WORKBENCH_TF_THREADS": "1"})
    client = Client(cluster)
    try:
        client.run(_raise_in_trial, 1)
        pids = list(client.run(os.getpid).values())
        killed = []

        def on_trial(number, record, frame):
            if record["state"] == "fail" and not killed:  # trial 1 failed: kill a worker mid-way through the next
                killed.append(pids[0])
                threading.Timer(4.0, os.kill, (pids[0], signal.SIGKILL)).start()

        report = wb.search(tiny_baseline, tiny_data, max_loss=3.0, trials=5, scheduler=cluster.scheduler_address,
                           space=TINY, warm_start=False, final_seeds=(0,), on_trial=on_trial)
    finally:
        client.close()
        cluster.close()
    trials = report.trials.set_index("trial")
    assert killed and len(trials) == 5 and trials.index.is_unique
    assert trials.loc[1, "state"] == "fail" and "injected failure" in trials.loc[1, "error"]
    assert set(trials["state"]) <= {"complete", "fail", "pruned"}
    assert report.counts["complete"] + report.counts["fail"] + report.counts["pruned"] == 5
    others = trials.drop(index=1)
    lost = others[others["state"] == "fail"]
    # a death costs at most that trial: retried and killed twice, or given up as lost if the scheduler dropped it
    assert all("KilledWorker" in e or e.startswith("lost:") for e in lost["error"]), lost


def _raise_in_trial(number: int) -> None:
    """Run on every worker: make trial ``number`` raise (as a bug in a stage would)."""
    from workbench.search import trial

    original = trial._run

    def failing(job, baseline, data_spec, record):
        if job["number"] == number:
            raise RuntimeError("injected failure")
        return original(job, baseline, data_spec, record)

    trial._run = failing


CLI_SEARCH = ["-m", "workbench.cli", "search", "--model", "{model}", "--dataset", "{data}", "--trials", "3",
              "--workers", "2", "--epochs", "1,1", "--qat-epochs", "0", "--baseline-epochs", "2", "--patience", "0",
              "--final-seeds", "0", "--no-warm-start", "--max-loss", "5", "--out", "{out}", "--quiet"]


def user_model(data, path: pathlib.Path) -> pathlib.Path:
    """A user's own small CNN, as a .keras file: conv -> BN -> ReLU -> depthwise -> BN -> ReLU -> pointwise -> head."""
    import keras

    from workbench.train import fit

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False, name="stem")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="stem_bn")(x))
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, name="dw")(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="dw_bn")(x))
    x = keras.layers.Conv2D(24, 1, activation="relu", name="pw")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="users_cnn")
    fit(model, (data.x_train, data.y_train), TrainConfig(epochs=3, learning_rate=3e-3))
    model.save(path)
    return path


@pytest.mark.slow
def test_a_killed_client_resumes_and_keeps_its_finished_trials(tiny_data, tmp_path):
    """The CLI on a user's .keras model with a depthwise chain: killed mid-search, then resumed."""
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=tiny_data.x_train, y_train=tiny_data.y_train, x_test=tiny_data.x_test,
             y_test=tiny_data.y_test)
    model = user_model(tiny_data, tmp_path / "users_cnn.keras")
    out = tmp_path / "out"
    argv = [sys.executable] + [a.format(data=data, out=out, model=model) for a in CLI_SEARCH]
    env = {**os.environ, "WORKBENCH_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    journal = tmp_path / ".out.study.journal"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and any(json.loads(line).get("state") == 1  # a trial finished: TrialState.COMPLETE
                                    for line in journal.read_text().splitlines() if line.strip().endswith("}")):
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the search ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the client and its local cluster, mid-search
    proc.wait()
    before = {t.number: t for t in stored_trials(journal)}
    finished = {n for n, t in before.items() if t.state == optuna.trial.TrialState.COMPLETE}
    assert finished and not out.exists()  # nothing published by the killed run
    done = subprocess.run(argv + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "search_report.json").read_text())
    states = {row["trial"]: row["state"] for row in report["trials"]}
    assert finished <= {n for n, s in states.items() if s == "complete"}
    assert report["settings"]["retried_after_resume"], "the kill should have caught trials running"
    counted = [n for n, t in states.items() if n not in report["settings"]["retried_after_resume"]]
    assert len(counted) == 3 and report["counts"]["interrupted"] == len(report["settings"]["retried_after_resume"])
    front = {row["trial"] for row in report["pareto"]}
    best = min((row for row in report["trials"] if row["state"] == "complete"), key=lambda r: r["gzip_bytes"])
    assert best["trial"] in front
    assert report["baseline"]["model"] == "users_cnn" and set(report["settings"]["layers"]) == {"stem", "dw", "pw",
                                                                                                "head"}


def test_a_worker_with_other_data_under_the_same_name_fails_the_trial_clearly(tiny_data):
    from workbench.search.trial import run_job

    record = run_job({"number": 7, "data": {"source": tiny_data.source, "train": 54000}}, b"", tiny_data)
    assert record["state"] == "fail" and record["number"] == 7
    assert "other data" in record["error"] and "54000" in record["error"]


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


@pytest.mark.slow
def test_the_studios_sensitivity_scan_runs_on_a_given_cluster_with_the_same_rows(tiny_data, tiny_baseline,
                                                                                  monkeypatch):
    """With DASK_SCHEDULER_ADDRESS set, the Studio's scan runs one task per layer on that cluster, from the
    session's pruned model (masks included), and finds exactly the rows a scan in the kernel finds."""
    from distributed import LocalCluster

    from workbench.pruning.sensitivity import sensitivity_scan
    from workbench.search.scan import cluster_scan
    from workbench.widgets.state import SessionState

    state = SessionState(tiny_baseline, tiny_data, model_name="lenet5", eval_size=200)
    assert state.set_layer_sparsity("fc1", 0.8) and state.set_layer_sparsity("conv2", 0.5)
    x, y = tiny_data.x_val[:200], tiny_data.y_val[:200]
    here = sensitivity_scan(state.model, (x, y), sparsities=(0.0, 0.9))
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, env={"WORKBENCH_TF_THREADS": "1"})
    try:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        assert state.scan(sparsities=(0.0, 0.9), eval_size=200) and state.wait(300), state.error
        frame = state.sensitivity
        assert state.error == "" and frame.attrs["where"] == f"Dask cluster {cluster.scheduler_address}"
        assert frame.to_dict(orient="records") == here.to_dict(orient="records")
        assert frame[(frame.layer == "fc1") & (frame.sparsity == 0.0)].accuracy.item() == pytest.approx(
            state.accuracy)  # from the pruned model, as the Studio holds it
        taylor = cluster_scan(state.model, (x, y), sparsities=(0.5,), criterion="taylor", layers=["fc2"],
                              train_data=(tiny_data.x_train[:256], tiny_data.y_train[:256]),
                              scheduler=cluster.scheduler_address)
        local = sensitivity_scan(state.model, (x, y), sparsities=(0.5,), criterion="taylor", layers=["fc2"],
                                 train_data=(tiny_data.x_train[:256], tiny_data.y_train[:256]))
        assert taylor.to_dict(orient="records") == local.to_dict(orient="records")
        with pytest.raises(ConfigError, match="No prunable layer named \\['pool1'\\]"):
            cluster_scan(state.model, (x, y), layers=["pool1"], scheduler=cluster.scheduler_address)
    finally:
        cluster.close()


def test_trials_stop_starting_once_the_deadline_function_says_the_tail_no_longer_fits():
    """run_trials asks a deadline function before each start; here the tail grows with the finished trials."""
    import concurrent.futures

    from workbench.search import engine

    study, _ = engine.open_study(None, "deadline", seed=0, resume=False)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    finished, asked = [], []
    end = time.monotonic() + 60.0

    def deadline():  # each finished trial "measured" 15 s: the tail is 1.25 * 15 * (1 + 1) per round
        asked.append(len(finished))
        return end - engine.tail_seconds([15.0] * len(finished), slots=1, runs=1) - 10.0 * len(finished)

    def submit(trial):
        trial.suggest_float("x", 0, 1)
        return pool.submit(lambda: {"state": "complete", "values": [100, 0.9], "seconds": {"total": 15.0}})

    outcome = engine.run_trials(study, submit, None, deadline, 1, 0.9, 1.0,
                                on_record=lambda n, rec: finished.append(n))
    pool.shutdown()
    # after k finished trials the start limit is end - 37.5 - 10k (k >= 1): k = 3 leaves -7.5 s, so 3 trials ran
    assert outcome == {"stopped": False, "timed_out": True} and len(study.trials) == 3 == len(finished)
    assert asked[-1] == 3


class _Stuck:
    """A future whose task the scheduler forgot: never done (as a Dask future stays after a dropped connection)."""

    def __init__(self, key, status="pending"):
        self.key, self.status, self.cancelled = key, status, False

    def done(self):
        return False

    def cancel(self):
        self.cancelled = True


def test_the_lost_watch_gives_up_a_task_the_scheduler_missed_twice_in_a_row_or_that_says_it_is_lost():
    from workbench.search.cluster import LOST_AFTER, LostWatch

    now = [0.0]
    answers = []

    def probe(futures):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    a, b, c = _Stuck("a"), _Stuck("b"), _Stuck("c", status="lost")
    watch = LostWatch(probe, every=10.0, clock=lambda: now[0])
    assert watch.lost([a, b, c]) == [c]  # its status says so; the scheduler is not asked before 10 s
    now[0] = 10.0
    answers[:] = [{"a"}, {"b"}, OSError("scheduler busy"), set()]
    assert watch.lost([a, b]) == []  # b missed once
    now[0] = 20.0
    assert watch.lost([a, b]) == []  # a missed once, b found again: its count starts over
    now[0] = 25.0
    assert watch.lost([a, b]) == []  # too soon: not asked
    now[0] = 30.0
    assert watch.lost([a, b]) == []  # the probe failed: no evidence either way
    now[0] = 40.0
    assert LOST_AFTER == 2 and watch.lost([a, b]) == [a]  # a: missed at 20 s and 40 s


def test_the_cluster_log_gets_the_clusters_messages_and_the_lost_trials_only_while_open(tmp_path):
    import logging

    from workbench.search.cluster import LostWatch, cluster_log

    path = tmp_path / "cluster.log"
    before = logging.getLogger("distributed").level
    with cluster_log(path):
        logging.getLogger("distributed.scheduler").info("Remove client Client-1")
        logging.getLogger("distributed.client").debug("too fine to keep")
        watch = LostWatch(lambda futures: set(), every=0.0)
        watch.lost([_Stuck("k")])
        assert watch.lost([_Stuck("k")]) != []
    logging.getLogger("distributed.scheduler").warning("after the search")
    text = path.read_text()
    assert "distributed.scheduler INFO Remove client Client-1" in text and "too fine" not in text
    assert "workbench.search WARNING lost: ['k']" in text and "the scheduler holds 0 of the 1 keys" in text
    assert "after the search" not in text and logging.getLogger("distributed").level == before
    with cluster_log(None):  # no file: nothing is written anywhere
        logging.getLogger("distributed.scheduler").info("nowhere")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.log"]


def test_a_trial_the_cluster_lost_is_told_failed_once_and_the_search_goes_on():
    import concurrent.futures

    from workbench.search import cluster, engine

    study, _ = engine.open_study(None, "lost", seed=0, resume=False)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    stuck = _Stuck("trial-0")
    told = []

    def submit(trial):
        trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            return stuck
        return pool.submit(lambda: {"state": "complete", "values": [100, 0.9], "seconds": {"total": 1.0}})

    now = [0.0]

    def clock():
        now[0] += 1.0  # every look at the clock is a second later
        return now[0]

    watch = cluster.LostWatch(lambda futures: set(), every=5.0, clock=clock)
    outcome = engine.run_trials(study, submit, 3, None, 2, 0.9, 1.0, on_record=lambda n, rec: told.append((n, rec)),
                                watch=watch)
    pool.shutdown()
    assert outcome == {"stopped": False, "timed_out": False} and stuck.cancelled
    assert sorted(n for n, _ in told) == [0, 1, 2] and len(study.trials) == 3  # told once each, 3 counted
    lost = dict(told)[0]
    assert lost["state"] == "fail" and lost["error"].startswith("lost: the Dask scheduler no longer holds")
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    # collect() (confirmation runs, final seeds) gives the same record instead of waiting for ever
    again = _Stuck("confirm-0")
    done = concurrent.futures.Future()
    done.set_result({"state": "complete", "seed": 1})
    assert cluster.collect([done, again], cluster.LostWatch(lambda f: set(), every=0.0)) == [
        {"state": "complete", "seed": 1}, {"state": "fail", "error": cluster.LOST}]


def test_trials_the_cluster_cancels_before_they_run_do_not_use_the_budget_and_a_run_of_them_ends_the_loop():
    import concurrent.futures

    from workbench.errors import ClusterError
    from workbench.search import engine

    study, _ = engine.open_study(None, "cancelled", seed=0, resume=False)
    told = []

    def cancelled_at_once(trial):  # as a task submitted on inputs the cluster dropped ("lost dependencies")
        trial.suggest_float("x", 0, 1)
        future = concurrent.futures.Future()
        if trial.number in (0, 1):
            future.set_result({"state": "complete", "values": [100, 0.9], "seconds": {"total": 1.0}})
        else:
            future.cancel()
        return future

    with pytest.raises(ClusterError, match=f"cancelled or refused {engine.UNRUN_LIMIT} trials in a row"):
        engine.run_trials(study, cancelled_at_once, 5, None, 1, 0.9, 1.0, on_record=lambda n, rec: told.append(rec))
    assert [r["state"] for r in told[:2]] == ["complete", "complete"]
    assert len(told) == 2 + engine.UNRUN_LIMIT and all(r.get("interrupted") for r in told[2:])
    assert engine.counted(study) == 2 and len(study.trials) == 2 + engine.UNRUN_LIMIT  # the cancelled are not counted
    # one that runs in between starts the count again: 5 trials finish although 3 were cancelled
    study, _ = engine.open_study(None, "between", seed=0, resume=False)

    def every_other(trial):
        trial.suggest_float("x", 0, 1)
        future = concurrent.futures.Future()
        if trial.number % 2 and trial.number < 6:
            future.cancel()
        else:
            future.set_result({"state": "complete", "values": [100, 0.9], "seconds": {"total": 1.0}})
        return future

    assert engine.run_trials(study, every_other, 5, None, 1, 0.9, 1.0) == {"stopped": False, "timed_out": False}
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 5 and states.count(optuna.trial.TrialState.FAIL) == 3


def test_inputs_are_scattered_again_after_the_client_lost_its_connection():
    """A broken client connection makes Dask cancel the client's futures, the scattered inputs too; the next
    trial gets them sent again instead of being cancelled for lost dependencies."""
    from distributed import Client, LocalCluster

    from workbench.search.cluster import Inputs

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as local, Client(local) as client:
        inputs = Inputs(client, {"base": b"12345", "data": {"name": "mnist"}})
        assert client.submit(len, *inputs.args()[:1], pure=False).result(timeout=30) == 5 and inputs.sent == 1
        before = inputs.futures["base"]
        client.scheduler_comm.comm.abort()  # as a connection broken under load
        deadline = time.monotonic() + 30
        while before.status != "cancelled" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert before.status == "cancelled"
        deadline = time.monotonic() + 30
        while client.status != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        base, data = inputs.args()
        assert inputs.sent == 2 and base is not before and base.status == "finished" and data == {"name": "mnist"}
        assert client.submit(len, base, pure=False).result(timeout=30) == 5


def test_the_scheduler_is_asked_which_tasks_it_still_holds():
    from distributed import Client, LocalCluster

    from workbench.search.cluster import scheduler_knows

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,  # in-process (inproc://): no sockets
                      dashboard_address=None) as cluster, Client(cluster) as client:
        held = client.submit(sum, [1, 2], key="held-sum")
        assert held.result() == 3
        assert scheduler_knows(client, [held, _Stuck("never-submitted")]) == {"held-sum"}
