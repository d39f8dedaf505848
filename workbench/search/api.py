"""search(): the smallest int8 model within an accuracy budget, found on the validation split, run on Dask."""

from __future__ import annotations

import os
import pathlib
import tempfile
import threading
import time
from typing import Callable

from workbench import stages
from workbench.config import TrainConfig
from workbench.io import check_output_dir
from workbench.nn.forward import layer_kind
from workbench.search import bracket, cluster, confirm as confirming, engine, report as reports
from workbench.search.arguments import check_arguments
from workbench.search.outputs import write_search_outputs
from workbench.search.space import SearchSpace, warm_start_sparsities
from workbench.search.trial import measure_job, recovery_table, run_job, scan_layer
from workbench.stats import resolution

SAFE_START = 0.5  # points per layer (scan, no retraining), 8-bit: the first trial, a pick that almost surely keeps the budget
BRACKET_BITS = 4  # weight bits of the bracketing trials (workbench.search.bracket)
SCAN_SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)


def search(model="lenet5", dataset="mnist", max_loss: float = 0.3, trials: int | None = 30,
           minutes: float | None = None, workers: int | None = None, scheduler: str | None = None, out_dir=None,
           space: SearchSpace | None = None, baseline: TrainConfig | None = None, seed: int = 0,
           final_seeds=(0, 1, 2), warm_start: bool = True, resume: bool = False, storage: str | None = None,
           model_kwargs: dict | None = None, on_trial: Callable | None = None, on_status: Callable | None = None,
           on_start: Callable | None = None, stop: threading.Event | None = None,
           early_stopping: bool = True, keep_weights: bool = False, confirm: bool = True, fidelity: float = 1.0,
           start_from: list | None = None, scan_images: int | None = None) -> reports.SearchReport:
    """Search per-layer sparsity and bits for the smallest int8 ``.tflite`` within ``max_loss`` points.

    Args:
        model: a zoo name (its baseline is trained once here, with early stopping on validation) or a
            trained keras.Model (used as the baseline).
        dataset: a dataset name (workers load it themselves, offline first) or a Dataset (sent once).
        max_loss: the validation accuracy loss allowed against the baseline, in percentage points.
        trials, minutes: the budget (either or both). ``minutes`` is the whole call's (the baseline's training
            and the sensitivity scan count): no trial starts once the running trials, the confirmation runs of
            the current candidates (``confirm.reserved_batches``: two batches, or more while they take at most a
            tenth of the budget; each run as long as its candidate's own trial) and the pick's final seeds would
            no longer fit (``engine.planned_tail_seconds``); a further confirmation batch runs only if it fits.
        workers: Dask worker processes of the embedded LocalCluster (default: one per core).
        scheduler: an existing Dask scheduler's address (default ``$DASK_SCHEDULER_ADDRESS``); trusted
            clusters only (Dask runs pickled tasks).
        out_dir: where the journal, ``pareto.csv``, ``trials.csv``, ``pick/``, ``search_report.json`` and
            ``cluster.log`` (the Dask client's and embedded scheduler's messages) go (published all-or-nothing);
            the live study journal and log are kept beside it for ``resume``.
        space: what to search (default: every prunable layer's density and bits, activation bits,
            fine-tune epochs and learning rate).
        baseline: how to train a zoo model's baseline (default: the pipeline's, to convergence).
        final_seeds: the pick is fine-tuned, quantized and measured on the test split once per seed (empty:
            not measured on test, as in the Studio, which works on the validation split).
        warm_start: scan each layer's sensitivity (on validation), then start with a safe trial (8-bit, each
            layer within 0.5 points in the scan) and bracketing trials along one knob, the scan loss each layer
            may take (``workbench.search.bracket``), before TPE's own trials.
        resume: continue the study in ``out_dir``'s journal (or ``storage``): finished trials are kept and
            the ones a killed search left running run again.
        storage: an RDB URL (``sqlite:///…``, ``postgresql://…``) for a shared study.
        on_trial: called as ``on_trial(number, record, report_so_far)`` after each trial.
        on_status: called with a short status text as phases start.
        on_start: called once the cluster is up, with {'dashboard': link or None, 'workers': n, 'layers': [...],
            'baseline_validation': accuracy}.
        stop: when set, no trial starts, running ones are cancelled, and the report holds what finished.
        early_stopping: let trials that cannot reach the budget stop after a fine-tune epoch (see
            ``workbench.search.trial.should_stop``); off, every trial runs to its end.
        confirm: before the test split, fine-tune the smallest candidates within the budget again with the final
            seeds other than ``seed`` and measure them on validation; the pick is the smallest whose mean loss
            over those fresh runs is within ``max_loss`` (``workbench.search.confirm`` says why). Needs such seeds.
            The pick's confirmation runs are then its final runs for those seeds, measured on the test split (so
            only the final seed equal to ``seed`` trains again): the same training, run once.
        fidelity: the fraction of the training images each search trial fine-tunes on (stratified, the same
            images in every trial; validation is whole): a cheaper, lower-fidelity trial for models whose
            epochs take minutes. The confirmation runs and the final seeds train on all the images, so a pick is
            judged at full fidelity before the test split; the time budget counts those runs at their full length
            (``engine.full_fidelity_seconds``).
        scan_images: the warm start's sensitivity scan measures on this many validation images (stratified;
            default all): each layer is measured at 8 sparsities, which takes minutes on a MobileNet.
        start_from: recipes to try first, after the warm start's safe trial: dicts of 'prune', 'quant' and
            'finetune' settings (configs or their dicts; e.g. a hand-tuned row's), mapped into the space by
            ``SearchSpace.params_from``.
        keep_weights: each finished trial's record, as ``on_trial`` receives it, holds its fine-tuned float
            weights and masks by layer (``record["weights"]``), so that a caller can load the trial's model;
            they are never stored in the study.

    Returns:
        SearchReport (trials, Pareto front, pick with its configs and test result over ``final_seeds``).
    """
    check_arguments(max_loss, trials, minutes, workers, final_seeds, fidelity, start_from, scan_images)
    space = space or SearchSpace()
    status = on_status or (lambda text: None)
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    out = check_output_dir(out_dir) if out_dir is not None else None
    journal = None
    cluster_log = out.parent / f".{out.name}.cluster.log" if out is not None else None
    if storage is None and out is not None:
        journal = out.parent / f".{out.name}.study.journal"
        storage = str(journal)
    started = time.perf_counter()

    status("baseline")
    data_spec = dataset if isinstance(dataset, str) else None
    run = stages.start_run(model, dataset, training={"baseline": baseline} if baseline else None,
                           model_kwargs=model_kwargs)
    stages.train_baseline(run, stop=stop)
    if run.stopped:
        raise InterruptedError("The search was stopped while its baseline trained; nothing was written.")
    base_val = run.validation["baseline"]
    noise = resolution(base_val, len(run.data.y_val))
    noise["max_loss_within_noise"] = max_loss < noise["se_points"]
    if noise["max_loss_within_noise"]:
        status("note: " + reports.noise_note(max_loss, noise))
    prunable = [layer.name for layer in run.baseline.layers if layer_kind(layer)]
    layers = space.searched_layers(prunable)
    recipes = [space.params_from(layers, r.get("prune"), r.get("quant"), r.get("finetune")) for r in start_from or []]
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "baseline.keras"
        run.baseline.save(path)
        baseline_bytes = path.read_bytes()
    study_name = f"{run.model_name}-{run.data.name}"
    study, retried = engine.open_study(storage, study_name, seed, resume)
    new_study = len(study.trials) == 0
    study.set_user_attr("search", {"max_loss": max_loss, "baseline_validation": base_val, "layers": layers,
                                   "space": space.get_config()})
    seconds = {"baseline": time.perf_counter() - started}
    records: dict[int, dict] = {}
    for t in study.get_trials(deepcopy=False):
        if "record" in t.user_attrs:
            records[t.number] = {**t.user_attrs["record"], "values": list(t.values) if t.values else None}

    status("starting the Dask cluster")
    with cluster.dask_client(workers, scheduler, log=cluster_log) as client:
        dashboard = cluster.dashboard_link(client)
        slots = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
        if on_start is not None:
            on_start({"dashboard": dashboard, "workers": slots, "layers": layers, "baseline_validation": base_val})
        inputs = cluster.Inputs(client, {"base": baseline_bytes,
                                        "data": {"name": data_spec} if data_spec else run.data})

        def probe(futures) -> set:
            """The keys the scheduler holds; the scattered inputs are sent again if it dropped them."""
            known = cluster.scheduler_knows(client, list(futures) + inputs.scattered())
            inputs.refresh(known)
            return known

        watch = cluster.LostWatch(probe)
        t0 = time.perf_counter()
        if warm_start and new_study:
            status("sensitivity scan (validation split)")
            futures = [client.submit(scan_layer, *inputs.args(), name, SCAN_SPARSITIES, scan_images or 0, pure=False)
                       for name in layers]
            scanned = cluster.collect(futures, watch)
            failed = [(name, r["error"]) for name, r in zip(layers, scanned) if isinstance(r, dict)]
            if failed:
                raise RuntimeError(f"The sensitivity scan failed on layer {failed[0][0]!r}: {failed[0][1]}")
            scan_rows = [row for rows in scanned for row in rows]
            study.set_user_attr("scan", engine.json_ready(scan_rows))
            study.enqueue_trial(space.params_for(warm_start_sparsities(_frame(scan_rows), SAFE_START), bits=8),
                                user_attrs={"warm_start": SAFE_START})
        if new_study:
            for i, params in enumerate(recipes):
                study.enqueue_trial(params, user_attrs={"start_from": i}, skip_if_exists=False)
        seconds["sensitivity"] = time.perf_counter() - t0

        summary = run.data.summary()
        expected_data = ({k: summary[k] for k in ("source", "train", "validation", "test")}
                         if data_spec else None)

        def job_for(number: int, params: dict, split: str = "validation", job_seed: int = 0) -> dict:
            configs = space.configs(params, seed=job_seed)
            return {"number": number, "seed": job_seed, "split": split, "model_name": run.model_name,
                    "fidelity": fidelity if split == "validation" else 1.0,
                    "data": expected_data,
                    "baseline_validation": base_val, "target": base_val - max_loss / 100.0,
                    "recovery": recovery_table(list(records.values())),
                    "early_stop": split == "validation" and early_stopping and not starving(records),
                    "keep_weights": keep_weights and split == "validation",
                    **{k: c.get_config() for k, c in configs.items()}}

        scan = _frame(study.user_attrs["scan"]) if warm_start and study.user_attrs.get("scan") else None
        brackets = {t.number: t.user_attrs["bracket"] for t in study.get_trials(deepcopy=False)
                    if t.user_attrs.get("bracket") is not None}

        def plan() -> None:
            """Before each ask: enqueue the next bracketing trial, if the bracket is not settled yet."""
            if scan is None or study.get_trials(deepcopy=False, states=(engine.TrialState.WAITING,)):
                return
            outcomes, running = [], []
            for number, tolerance in brackets.items():
                rec = records.get(number)
                if rec is None:
                    running.append(tolerance)
                elif rec.get("state") == "complete":
                    outcomes.append((tolerance, (base_val - rec["values"][1]) * 100.0 <= max_loss + 1e-9))
                elif rec.get("state") == "pruned":
                    outcomes.append((tolerance, False))
            tolerance = bracket.next_tolerance(outcomes, running, len(brackets))
            if tolerance is not None:
                params = space.params_for(bracket.allocate(scan, tolerance), bits=BRACKET_BITS,
                                          finetune_epochs=space.finetune_epochs[1])
                study.enqueue_trial(params, user_attrs={"bracket": tolerance}, skip_if_exists=False)

        def submit(trial):
            if trial.user_attrs.get("bracket") is not None:
                brackets[trial.number] = trial.user_attrs["bracket"]
            params = space.sample(trial, layers)
            job = job_for(trial.number, params, job_seed=seed)
            return client.submit(run_job, job, *inputs.args(), pure=False,
                                 key=engine.unique_key(study_name, trial.number))

        def on_record(number: int, record: dict) -> None:
            records[number] = {k: v for k, v in record.items() if k not in ("tflite", "weights")}
            if record.get("tflite") and journal is not None:
                _keep_artifact(journal, number, record["tflite"])
            if on_trial is not None:
                frame = reports.trials_frame(study, base_val, max_loss)
                on_trial(number, record, frame)

        status("searching")
        budget_end = trials_deadline(minutes, time.perf_counter() - started)
        fresh_seeds = [s for s in final_seeds if s != seed] if confirm else []

        per_batch = confirming.batch_size(slots, len(fresh_seeds))
        # the pick's confirmation runs are its final runs for those seeds (measured on test once it is picked):
        # only the other final seeds train again
        fresh_finals = [s for s in final_seeds if s not in fresh_seeds]

        def took(full: bool = False) -> dict:
            """Finished trials' seconds, as they ran or (``full``) as their runs on all the training images."""
            return {n: engine.full_fidelity_seconds(r.get("seconds") or {}, fidelity if full else 1.0)
                    for n, r in records.items() if r.get("state") == "complete"}

        def reserved(full: dict) -> int:
            """Confirmation batches to keep room for, a batch timed as ``per_batch`` typical full runs per seed."""
            typical = engine.typical_seconds(full.values()) or 0.0
            return confirming.reserved_batches(
                engine.makespan([typical] * (per_batch * len(fresh_seeds)), slots), minutes and minutes * 60.0,
                per_batch)

        def tail(batch: list | None = None, inflight: bool = True) -> float:
            """The time after the last trial starts: the runs to come are those of the candidates (``batch``, or
            the current front's first ``reserved`` batches), each as long as its own search trial on all the
            training images; with no candidate yet, one candidate as long as a typical trial."""
            seconds, full = took(), took(full=True)
            if not seconds:
                return 0.0  # nothing measured yet
            if batch is None:
                front = reports.pareto_front(reports.trials_frame(study, base_val, max_loss))
                batch = confirming.candidates(front, max_loss)[:per_batch * reserved(full)]
            known = [full[n] for n in batch if full.get(n)] or [engine.typical_seconds(full.values()) or 0.0]
            return engine.planned_tail_seconds(seconds.values(), slots, [d for d in known for _ in fresh_seeds],
                                               [max(known[:per_batch])] * len(fresh_finals), inflight)

        def deadline() -> float | None:
            return None if budget_end is None else budget_end - tail()
        t0 = time.perf_counter()
        outcome = engine.run_trials(study, submit, trials, deadline, slots, base_val, max_loss,
                                    on_record=on_record, stop=stop, plan=plan, watch=watch)
        seconds["search"] = time.perf_counter() - t0

        trials_table = reports.trials_frame(study, base_val, max_loss)
        front = reports.pareto_front(trials_table)
        number = reports.pick_trial(front)
        verdicts, out_of_time, confirm_runs = None, False, {}
        if number is not None and confirm and fresh_seeds and not outcome["stopped"]:
            status(f"confirming the smallest candidates on validation with seeds {fresh_seeds}")
            t0 = time.perf_counter()
            verdicts = []
            order = confirming.candidates(front, max_loss)
            kept_room = per_batch * reserved(took(full=True))
            for start in range(0, len(order), per_batch):
                batch = order[start:start + per_batch]
                if start >= kept_room and budget_end is not None and (
                        time.monotonic() + tail(batch, inflight=False) > budget_end):
                    out_of_time = True  # the time budget has no room for another batch and the final seeds
                    break
                futures = {n: [client.submit(run_job, job_for(n, study.trials[n].params, split="confirm",
                                                              job_seed=s), *inputs.args(), pure=False)
                               for s in fresh_seeds] for n in batch}
                for n in batch:
                    runs = [{"seed": s, **r} for r, s in zip(cluster.collect(futures[n], watch), fresh_seeds)]
                    confirm_runs[n] = {r["seed"]: r for r in runs if r.get("state") == "complete" and r.get("tflite")}
                    verdicts.append(confirming.judge(n, runs, base_val, max_loss))
                if confirming.chosen(verdicts) is not None or (stop is not None and stop.is_set()):
                    break
            number = confirming.chosen(verdicts)
            seconds["confirm"] = time.perf_counter() - t0
        pick, artifact = None, None
        if number is not None:
            row = front[front["trial"] == number].iloc[0]
            params = study.trials[number].params
            pick = {"trial": number, "params": params,
                    "configs": space.configs(params, seed=final_seeds[0] if final_seeds else seed),
                    "gzip_bytes": int(row["gzip_bytes"]), "ratio": float(row["ratio"]),
                    "val_accuracy": float(row["val_accuracy"]), "loss_points": float(row["loss_points"]),
                    "confirmation": verdicts, "test": None}
        if pick is not None and not outcome["stopped"] and final_seeds:
            status(f"measuring the pick (trial {number}) on the test split, seeds {list(final_seeds)}")
            t0 = time.perf_counter()
            kept = confirm_runs.get(number, {})
            finals = cluster.collect([
                client.submit(measure_job, {"data": expected_data}, kept[s]["tflite"], *inputs.args(), pure=False)
                if s in kept else
                client.submit(run_job, job_for(number, params, split="test", job_seed=s), *inputs.args(), pure=False)
                for s in final_seeds], watch)
            finals = [{**kept[s], **f, "seed": s, "seconds": {**kept[s].get("seconds", {}), **f.get("seconds", {})},
                       "reused": "its confirmation run, measured on test"} if s in kept and f.get("state") == "complete"
                      else {"seed": s, **f} for f, s in zip(finals, final_seeds)]
            failed = [f for f in finals if f["state"] != "complete"]
            finals = [f for f in finals if f["state"] == "complete"]
            pick.update(test=reports.summarise_seeds(finals) if finals else None,
                        failed_seeds=[{"seed": f["seed"], "error": f.get("error")} for f in failed],
                        runs=[{k: v for k, v in f.items() if k not in ("tflite", "traceback")} for f in finals])
            artifact = finals[0]["tflite"] if finals else None
            seconds["final"] = time.perf_counter() - t0
        elif pick is not None:
            pick["note"] = (("the search was stopped: " if outcome["stopped"] else "no final seeds: ")
                            + "the pick was not measured on the test split")

    seconds["total"] = time.perf_counter() - started
    result = reports.SearchReport(
        trials=trials_table, pareto=front, pick=pick,
        baseline={"validation": base_val, "model": run.model_name, "dataset": summary,
                  "training": {k: v for k, v in run.reports["baseline"].items() if k != "history"},
                  "fp32_bytes": int(run.baseline.count_params()) * 4},
        settings={"max_loss": max_loss, "trials": trials, "minutes": minutes, "workers": slots,
                  "scheduler": scheduler or "embedded LocalCluster (127.0.0.1)", "seed": seed,
                  "final_seeds": list(final_seeds), "warm_start": warm_start, "layers": layers,
                  "validation_noise": noise,
                  "space": space.get_config(), "storage": str(storage) if storage else "in memory",
                  "resumed": bool(resume and not new_study), "retried_after_resume": retried,
                  "sampler": "TPE (multivariate, seeded) with the budget as a constraint",
                  "fidelity": fidelity, "start_from": len(recipes), "scan_images": scan_images,
                  "confirmation_batch": per_batch, "confirmation_reserved_batches": reserved(took(full=True)),
                  "confirmation_out_of_time": out_of_time,
                  "confirmation": verdicts if verdicts is not None else (
                      "off" if not confirm else "no fresh seeds (final_seeds other than seed)" if not fresh_seeds
                      else "not run"),
                  "early_stopping": ("a trial stops when it cannot reach the budget even with the largest "
                                     "recovery a finished trial showed from the same epoch") if early_stopping
                  else "off"},
        counts={}, seconds=seconds, stopped=outcome["stopped"], timed_out=outcome["timed_out"],
        dashboard=dashboard, artifact=artifact)
    result.counts = reports.count_states(trials_table, study)
    if out is not None:
        write_search_outputs(out, result, journal, cluster_log)
    return result


def _frame(rows: list):
    import pandas as pd

    return pd.DataFrame(rows)


def trials_deadline(minutes: float | None, spent_s: float, now: float | None = None) -> float | None:
    """The ``time.monotonic()`` after which no trial starts: ``minutes`` count from the call, so the ``spent_s``
    seconds of baseline training and sensitivity scan are taken off (None: no time budget)."""
    if not minutes:
        return None
    return (time.monotonic() if now is None else now) + max(0.0, minutes * 60.0 - spent_s)


STARVED_AFTER = 5  # stopped-early trials in a row after which the next one runs to its end


def starving(records: dict) -> bool:
    """True when the last trials all stopped early: the stopping rule learns only from finished trials, so
    without one that finishes now and then it would keep stopping everything on old evidence."""
    states = [records[n].get("state") for n in sorted(records)][-STARVED_AFTER:]
    return len(states) == STARVED_AFTER and all(state == "pruned" for state in states)


def _keep_artifact(journal: pathlib.Path, number: int, data: bytes) -> None:
    """Every finished trial's .tflite, beside the journal (the Studio loads a trial's model from it)."""
    folder = journal.with_name(journal.name.replace(".study.journal", ".trials"))
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{number}.tflite.part"
    tmp.write_bytes(data)
    os.replace(tmp, folder / f"{number}.tflite")


def trial_artifact(out_dir, number: int) -> bytes:
    """The .tflite of a finished trial of the search in ``out_dir``."""
    out = pathlib.Path(out_dir)
    path = out.parent / f".{out.name}.trials" / f"{number}.tflite"
    if not path.is_file():
        raise FileNotFoundError(f"No artifact for trial {number} in {path.parent}")
    return path.read_bytes()

