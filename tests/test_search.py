"""workbench.search: a tiny search on real Dask workers (LeNet-5, 1,000 bundled digits, 1 fine-tune epoch).

Checked: the Pareto front against a brute force over the stored trials, the pick against the budget,
compress() reproducing the pick, a trial that raises, a worker killed mid-trial, a client killed
mid-search then resumed, and the Studio's sensitivity scan on a given cluster. Units of the space, the stopping
rule and the front run without a cluster (test_search_units.py); the trial loop against the cluster's faults in
test_search_cluster.py.
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

from workbench.config import TrainConfig
from workbench.errors import ConfigError
from workbench.search import SearchSpace

TINY = SearchSpace(finetune_epochs=(1, 1), qat_epochs=0, activation_bits=(8,))
RECIPE = {"prune": {"target": "per_layer", "sparsity": 0.5, "layer_sparsity": {"fc1": 0.9}},
          "quant": {"weight_bits": 8, "layer_weight_bits": {"fc1": 4}}, "finetune": {"epochs": 1}}


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


def test_search_refuses_bad_budgets_before_any_work(tiny_data):
    import workbench as wb

    for kwargs in (dict(trials=None, minutes=None), dict(trials=0), dict(max_loss=-1), dict(workers=0),
                   dict(minutes=float("nan")), dict(final_seeds=(-1,)), dict(fidelity=0), dict(fidelity=1.5),
                   dict(scan_images=5), dict(scan_images=True), dict(start_from="recipe"), dict(start_from=[3])):
        with pytest.raises(ConfigError, match="Received"):
            wb.search("lenet5", tiny_data, **{"trials": 2, **kwargs})


def test_the_scan_can_measure_on_part_of_the_validation_split(tiny_data, tiny_baseline, tmp_path):
    from workbench.pruning.sensitivity import sensitivity_scan
    from workbench.search.trial import scan_layer

    path = tmp_path / "baseline.keras"
    tiny_baseline.save(path)
    rows = scan_layer(path.read_bytes(), tiny_data, "fc1", [0.0, 0.9], images=100)
    part = tiny_data.subset(validation=100)
    expected = sensitivity_scan(tiny_baseline, (part.x_val, part.y_val), sparsities=[0.0, 0.9], layers=["fc1"])
    assert [r["accuracy"] for r in rows] == pytest.approx(list(expected["accuracy"]))
    assert all(round(r["accuracy"] * 100, 6) == int(round(r["accuracy"] * 100)) for r in rows)  # out of 100 images


@pytest.fixture(scope="module")
def tiny_search(tiny_data, tiny_baseline, tmp_path_factory):
    import workbench as wb

    out = tmp_path_factory.mktemp("search") / "out"
    seen = []
    # minutes too: before each start the deadline plans the tail from the candidates (trials=5 ends it first)
    # trials fine-tune on half the images (fidelity), the confirmation and the final seeds on all of them; a given
    # recipe runs right after the warm start's safe trial
    report = wb.search(tiny_baseline, tiny_data, max_loss=3.0, trials=5, minutes=30, workers=2, out_dir=out, space=TINY,
                       final_seeds=(0, 1), on_trial=lambda n, rec, frame: seen.append((n, rec["state"])),
                       fidelity=0.5, start_from=[RECIPE], scan_images=200)
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
    assert [t.number for t in trials if t.user_attrs.get("start_from") is not None] == [1]
    assert trials[1].params == TINY.params_from(["conv1", "conv2", "fc1", "fc2"], **RECIPE)
    assert {t.user_attrs["record"]["train_images"] for t in trials if "train_images" in t.user_attrs["record"]} == {500}
    assert report.settings["fidelity"] == 0.5 and report.settings["start_from"] == 1
    assert report.settings["scan_images"] == 200
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
    at = [v["trial"] for v in feasible].index(report.pick["trial"])
    assert feasible[at]["passed"] and all(not v["passed"] for v in feasible[:at])  # every smaller one failed
    assert report.settings["confirmation_batch"] == 2  # 2 workers, 1 fresh seed: 2 candidates at a time
    # cheap runs in a 30-minute budget: room for more than two batches, at most the 5 that 9 candidates fill
    assert report.settings["confirmation_reserved_batches"] in range(2, 6)
    assert len(feasible) <= at + 2 and all(v["seeds"] == [1] for v in feasible)
    assert feasible[at]["mean_loss_points"] + feasible[at]["se_points"] <= 3.0  # within the budget by an error
    assert 0 < feasible[at]["se_points"] < 3.0
    assert report.pareto["se_points"].notna().all()
    assert f"Fine-tuned again with seeds [1], it lost {feasible[at]['mean_loss_points']:+.2f} points" in report.summary()
    assert report.pick["loss_points"] <= 3.0
    final = report.pick["test"]
    assert final["seeds"] == [0, 1] and 0 <= final["int8"]["mean"] <= 1
    assert [run["train_images"] for run in report.pick["runs"]] == [1000, 1000]  # full fidelity
    # seed 1's final run is its confirmation run, measured on test; seed 0 (the search's) trained again
    assert [bool(run.get("reused")) for run in report.pick["runs"]] == [False, True]
    reused = report.pick["runs"][1]
    assert round((report.baseline["validation"] - reused["values"][1]) * 100.0, 6) == feasible[at]["val_loss_points"][0]
    assert reused["test"]["split"] == "test" and 0 <= reused["test"]["int8"]["accuracy"] <= 1
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
              "--final-seeds", "0", "--no-warm-start", "--max-loss", "5", "--out", "{out}", "--quiet", "--fidelity", "0.5"]


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
    assert report["settings"]["fidelity"] == 0.5  # --fidelity reached the search
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
