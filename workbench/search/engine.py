"""Optuna ask-and-tell on Dask: the client owns the study, Dask workers run the trials.

The study is multi-objective (gzip -9 bytes of the int8 ``.tflite``, down; its validation accuracy,
up) with a seeded TPE sampler that treats "validation loss within ``max_loss``, with headroom" as a constraint
(``workbench.search.budget``).
Optuna's pruners cannot serve it: ``Trial.report`` and ``should_prune`` raise NotImplementedError
for multi-objective studies, and ranking trials by intermediate accuracy (successive halving)
would stop exactly the smallest models. The trials instead stop themselves
(``trial.should_stop``) when, even after the largest recovery a finished trial showed from the
same point, they would miss the budget; stopped trials are told as PRUNED.

Faults: a worker that dies mid-trial costs that trial one retry (``allowed-failures`` = 1 on the
embedded cluster), then the trial is told FAIL (KilledWorker). A trial that raises comes back
as a FAIL record with its message. A trial whose task the scheduler dropped (``cluster.LostWatch``) is told
FAIL too, instead of being waited for for ever; one the cluster cancelled before it ran is told FAIL
(interrupted, not counted), and ``UNRUN_LIMIT`` of those in a row end the loop with a ClusterError. Each trial is told exactly once. A search killed mid-way
leaves RUNNING trials in its journal: ``resume`` marks them FAIL (interrupted) and enqueues
their parameters again.
"""

from __future__ import annotations

import math
import time
import uuid

import optuna
from optuna.trial import TrialState

from workbench.errors import ClusterError, ConfigError
from workbench.search.budget import over_budget
from workbench.search.cluster import LOST, POLL_SECONDS, LostWatch, outcome

optuna.logging.set_verbosity(optuna.logging.WARNING)
RDB_PREFIXES = ("sqlite:", "postgresql:", "postgresql+", "mysql:", "mysql+")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
UNRUN_LIMIT = 20  # trials in a row cancelled or refused by the cluster before the loop gives up on it


# -- the study -----------------------------------------------------------------------------------------------
def open_storage(storage):
    """An Optuna storage: a JournalStorage file (a path), an RDB URL, or in memory (None)."""
    if storage is None:
        return optuna.storages.InMemoryStorage()
    text = str(storage)
    if text.startswith(RDB_PREFIXES):
        return optuna.storages.RDBStorage(text)
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    return optuna.storages.JournalStorage(JournalFileBackend(text, lock_obj=JournalFileOpenLock(text)))


def open_study(storage, name: str, seed: int, resume: bool) -> tuple[optuna.Study, list[int]]:
    """Create the study, or load it to resume; returns (study, numbers of the interrupted trials re-enqueued)."""
    store = open_storage(storage)
    exists = name in {s.study_name for s in optuna.get_all_study_summaries(store)}
    if exists and not resume:
        raise ConfigError(f"A search named {name!r} already exists in {storage}. Pass resume=True (CLI --resume) "
                          "to continue it, or give another out_dir.")
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)
    study = optuna.create_study(storage=store, study_name=name, directions=["minimize", "maximize"],
                                sampler=sampler, load_if_exists=True)
    retried = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        store.set_trial_user_attr(frozen._trial_id, "interrupted", True)
        store.set_trial_user_attr(frozen._trial_id, "record", {
            "state": "fail", "error": "interrupted: the search stopped while this trial ran; it runs again"})
        store.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
        study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number}, skip_if_exists=False)
        retried.append(frozen.number)
    return study, retried


def counted(study: optuna.Study) -> int:
    """Trials that used budget: finished, stopped early or failed (not the ones a killed search interrupted)."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=COUNTED) if not t.user_attrs.get("interrupted"))


def tell(study: optuna.Study, trial, record: dict, baseline_validation: float, max_loss: float) -> None:
    """Tell Optuna one trial's outcome, once; the record (without the artifact) is kept as a user attribute."""
    kept = {k: v for k, v in record.items() if k not in ("tflite", "traceback", "weights")}
    trial.set_user_attr("record", json_ready(kept))
    if record.get("interrupted"):
        trial.set_user_attr("interrupted", True)
    if record["state"] == "complete":
        loss = round((baseline_validation - record["values"][1]) * 100.0, 9)  # as report.loss_points
        se = (record.get("paired") or {}).get("se_points")  # feasible when <= 0: within the budget with headroom
        trial.set_constraint("validation_loss_over_budget", over_budget(loss, se, max_loss))
        study.tell(trial, record["values"])
    elif record["state"] == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def json_ready(value):
    """Plain JSON values: string keys, lists, None for NaN and infinities, numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (bytes, str)):
        return json_ready(value.item())
    return value


# -- the time budget ------------------------------------------------------------------------------------------
TAIL_MARGIN = 1.25  # the tail's rounds are estimated from past trials; finals also measure the test split


def typical_seconds(durations) -> float | None:
    """The nearest-rank 90th percentile of ``durations`` (finished trials' seconds); None when none is known."""
    durations = sorted(float(d) for d in durations if d is not None and d == d)
    if not durations:
        return None
    return durations[min(len(durations) - 1, math.ceil(0.9 * len(durations)) - 1)]


def tail_seconds(durations, slots: int, runs: int, inflight: bool = True) -> float:
    """``planned_tail_seconds`` when nothing is known of the runs to come: ``runs`` full trials, each as long as
    the 90th percentile of ``durations``."""
    durations = list(durations)
    return planned_tail_seconds(durations, slots, [typical_seconds(durations) or 0.0] * max(0, runs), [], inflight)


def makespan(runs, slots: int) -> float:
    """Wall time of ``runs`` (seconds each) on ``slots`` workers: longest first, each to the least busy worker."""
    loads = [0.0] * max(1, slots)
    for seconds in sorted((float(r) for r in runs), reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)


def full_fidelity_seconds(seconds: dict, fidelity: float = 1.0) -> float | None:
    """How long a trial's run would take on all the training images, from its stage times (``seconds``, as a
    record holds them, with 'total'): its training stages ('finetune', 'qat') scaled by ``1 / fidelity``, the
    rest (pruning, export, the int8 measurement) as they were. An upper bound: the validation pass after each
    fine-tune epoch is timed with the fine-tune and does not grow. None when the total is unknown."""
    total = (seconds or {}).get("total")
    if total is None or total != total:
        return None
    if not 0.0 < fidelity <= 1.0:
        raise ValueError(f"fidelity must be a fraction in (0, 1]. Received: fidelity={fidelity!r}")
    training = sum(float(seconds.get(stage) or 0.0) for stage in ("finetune", "qat"))
    return float(total) + training * (1.0 / fidelity - 1.0)


def planned_tail_seconds(durations, slots: int, confirm_runs, final_runs, inflight: bool = True) -> float:
    """The tail when the runs to come are known: the trials then running (one round as long as the 90th
    percentile of ``durations``; ``inflight``), then the confirmation runs, then the final seeds, each phase
    scheduled on ``slots`` workers (``makespan``), times TAIL_MARGIN. Until 2026-12-01 every run was counted as
    long as that percentile: with fine-tunes of 2 to 10 epochs the reserve was 2.4 times the tail the search
    then needed, and auto-lenet5-fashion stopped starting trials after 22 of its 60 minutes."""
    typical = typical_seconds(durations)
    if typical is None:
        return 0.0
    return TAIL_MARGIN * ((typical if inflight else 0.0) + makespan(confirm_runs, slots) + makespan(final_runs, slots))


# -- the loop ------------------------------------------------------------------------------------------------
def run_trials(study, submit, trials: int | None, deadline: float | None, slots: int, baseline_validation: float,
               max_loss: float, on_record=None, stop=None, plan=None, watch: LostWatch | None = None) -> dict:
    """Ask, submit and tell until ``trials`` have counted, ``deadline`` (time.monotonic, or a function returning
    it, asked before each start) passes or ``stop`` is set. ``submit(trial) -> future``; ``on_record(trial_number,
    record)`` after each tell; ``plan()`` before each ask (it may enqueue the trial to ask for); ``watch`` finds
    running trials the cluster lost (told FAIL, counted: like a worker's death, it costs that trial).
    Returns {'stopped': bool, 'timed_out': bool}."""
    from distributed.scheduler import KilledWorker

    inflight: dict = {}
    stopped = timed_out = False
    used = counted(study)  # read once; every tell below that uses budget adds one
    unrun = 0  # trials in a row that the cluster cancelled or refused before they ran

    def told(trial, record: dict) -> None:
        nonlocal used, unrun
        tell(study, trial, record, baseline_validation, max_loss)
        used += not record.get("interrupted")
        unrun = unrun + 1 if record.get("unrun") else 0
        if on_record is not None:
            on_record(trial.number, record)
        if unrun >= UNRUN_LIMIT:
            raise ClusterError(f"The Dask cluster cancelled or refused {unrun} trials in a row before they ran "
                               f"(the last: {record.get('error')}). Received: a cluster that no longer runs tasks; "
                               "check it (the search's cluster.log says what happened), then resume the search.")

    def budget_left() -> bool:
        nonlocal timed_out
        limit = deadline() if callable(deadline) else deadline
        if limit is not None and time.monotonic() >= limit:
            timed_out = True
            return False
        return trials is None or used + len(inflight) < trials

    def launch() -> None:
        if plan is not None:
            plan()
        trial = study.ask()
        try:
            future = submit(trial)
        except Exception as exc:  # noqa: BLE001 (a trial that cannot start is a failed trial)
            told(trial, {"state": "fail", "error": f"{type(exc).__name__}: {exc}", "unrun": True})
            return
        inflight[future] = trial

    while True:
        if stop is not None and stop.is_set():
            stopped = True
        while not stopped and len(inflight) < slots and budget_left():
            launch()
        if not inflight:
            break
        done = [future for future in inflight if future.done()]
        if not done:
            time.sleep(POLL_SECONDS)
        if stop is not None and stop.is_set() and not stopped:
            stopped = True
        if stopped:
            for future in list(inflight):
                if future not in done:
                    future.cancel()
        for future in done:
            trial = inflight.pop(future)
            told(trial, outcome(future, KilledWorker))
        for future in (watch.lost(list(inflight)) if watch is not None and not stopped else []):
            future.cancel()
            told(inflight.pop(future), {"state": "fail", "error": LOST})
        if stopped:
            for future in list(inflight):
                trial = inflight.pop(future)
                told(trial, {"state": "fail", "error": "stopped: the search was stopped while this trial ran",
                             "interrupted": True})
    return {"stopped": stopped, "timed_out": timed_out}


def unique_key(study_name: str, number: int) -> str:
    return f"trial-{study_name}-{number}-{uuid.uuid4().hex[:8]}"
