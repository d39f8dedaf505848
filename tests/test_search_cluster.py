"""The search's trial loop against the cluster's faults, without training: the deadline, trials the scheduler lost
or cancelled, the cluster's log, inputs scattered again after a lost connection, and the lost-task watch.
"""

from __future__ import annotations

import time

import optuna
import pytest


def test_trials_stop_starting_once_the_deadline_function_says_the_tail_no_longer_fits():
    """run_trials asks a deadline function before each start; here the tail grows with the finished trials."""
    import concurrent.futures

    from workbench.search import engine

    study, _ = engine.open_study(None, "deadline", seed=0, resume=False)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    finished, asked, tails = [], [], []

    # Each finished trial "measured" 150 s, so the tail is 1.25 * 150 * (1 + 1) = 375 s; the budget left shrinks
    # by 100 s per finished trial. The limit is set from the clock at each call (a search's deadline is fixed, but
    # here the machine's speed must not decide how many trials fit): only the tail's arithmetic does.
    def deadline():
        asked.append(len(finished))
        tails.append(engine.tail_seconds([150.0] * len(finished), slots=1, runs=1))
        return time.monotonic() + 600.0 - tails[-1] - 100.0 * len(finished)

    def submit(trial):
        trial.suggest_float("x", 0, 1)
        return pool.submit(lambda: {"state": "complete", "values": [100, 0.9], "seconds": {"total": 150.0}})

    outcome = engine.run_trials(study, submit, None, deadline, 1, 0.9, 1.0,
                                on_record=lambda n, rec: finished.append(n))
    pool.shutdown()
    # after k >= 1 finished trials the limit is now + 600 - 375 - 100k: 125 s, 25 s, then -75 s, so 3 trials ran
    assert outcome == {"stopped": False, "timed_out": True} and len(study.trials) == 3 == len(finished)
    assert asked[-1] == 3 and tails[1:] == pytest.approx([375.0] * (len(tails) - 1))


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


def test_embedded_workers_do_not_get_dasks_malloc_trim_threshold_and_other_workers_undo_it():
    """Dask's default MALLOC_TRIM_THRESHOLD_ makes every large TensorFlow buffer a fresh mmap (1.3 to 1.55x the
    wall time of a MobileNet epoch here): the embedded cluster leaves it out and keeps Dask's other variables,
    and a trial on another cluster's worker resets glibc's thresholds once."""
    import os
    import subprocess
    import sys

    from workbench.search.cluster import dask_client

    with dask_client(workers=1) as client:
        seen = list(client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("MKL_NUM_THREADS"))
                               ).values())
    assert seen == [(None, "1")]
    probe = ("from workbench.search.trial import restore_malloc as r; "
             "ok = r(); again = r(); print(ok, again)")
    for env, expected in (({"MALLOC_TRIM_THRESHOLD_": "65536"}, "True False"), ({}, "False False")):
        clean = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
        out = subprocess.run([sys.executable, "-c", probe], env={**clean, **env}, capture_output=True, text=True,
                             timeout=120)
        assert out.stdout.split() == expected.split(), out.stderr[-2000:]
