"""The Dask side of a search: the client (an embedded LocalCluster on 127.0.0.1, or an existing scheduler), its
log, the trials' shared inputs, and waiting for tasks the cluster may lose.

Faults: when the client's connection to the scheduler breaks, Dask cancels every future of the client (its
scattered inputs too) and the scheduler releases their tasks; ``Inputs`` scatters the inputs again, and a
trial cancelled that way comes back as an interrupted FAIL record (``outcome``), so that it does not use the
budget. A task whose future stays pending though the scheduler no longer holds it (seen once, in a hung test:
no task on the scheduler, the client's futures pending) is found by ``LostWatch`` and given up as lost.
``cluster.log`` keeps the client's and the embedded scheduler's messages, so that such a loss can be explained.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import CancelledError

from workbench.errors import ConfigError

POLL_SECONDS = 0.25
CHECK_SECONDS = 20.0  # how often the client asks the scheduler whether it still holds the running trials
LOST_AFTER = 2  # consecutive checks that did not find a trial's task before it is given up as lost
LOG = logging.getLogger("workbench.search")
LOGGED = ("distributed", "workbench.search")  # the embedded scheduler's and the client's messages, and ours


class _FileLog(logging.Handler):
    """Appends records to a file. Not a StreamHandler: LocalCluster's ``silence_logs`` lowers every StreamHandler
    of the "distributed" logger to ERROR for the cluster's lifetime, and this one must keep INFO."""

    def __init__(self, path):
        super().__init__()
        self.path, self.stream = path, None

    def emit(self, record) -> None:
        try:
            if self.stream is None:
                self.stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except Exception:  # noqa: BLE001 (logging never breaks the search)
            self.handleError(record)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        super().close()


@contextlib.contextmanager
def cluster_log(path):
    """Append the client's and the embedded scheduler's INFO messages (client connections opened, closed and
    removed, reconnects, workers lost) and the trials found lost to ``path``, so that a trial lost by the
    cluster can be explained afterwards; the console stays quiet. ``path=None``: nothing is written."""
    if path is None:
        yield
        return
    handler = _FileLog(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    levels = {}
    for name in LOGGED:
        logger = logging.getLogger(name)
        levels[name] = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for name in LOGGED:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(levels[name])
        handler.close()


def worker_environ() -> dict:
    """Dask's pre-spawn environment for worker processes without its ``MALLOC_TRIM_THRESHOLD_=65536``.

    Setting that variable turns off glibc's dynamic mmap threshold, so every TensorFlow buffer above 128 KiB
    is a fresh mmap that faults in page by page: measured here on one MobileNet epoch (2,048 images, one
    thread, alternating runs), 3.7 million page faults against 0.01 to 0.3 million, 10 s of system time,
    and 1.3 to 1.55x the wall time. Workers of another cluster get it undone in the trial (trial.py)."""
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, log=None):
    """A Dask client: on ``scheduler`` (an existing cluster), or on an embedded LocalCluster bound to
    127.0.0.1 with one single-threaded worker process per core (TensorFlow's threads set to match).
    ``log``: a file that gets the cluster's messages while the client is open (``cluster_log``)."""
    with cluster_log(log), _client(workers, scheduler) as client:
        yield client


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None):
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"Cannot reach the Dask scheduler. Received: scheduler={scheduler!r} ({exc}); "
                              "check the address, or leave it out to run on this machine.") from None
        try:
            yield client
        finally:
            client.close()
        return
    cores = os.cpu_count() or 1
    workers = workers or cores
    threads = max(1, cores // workers)
    env = {"WORKBENCH_TF_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads),
           "TF_NUM_INTEROP_THREADS": str(min(threads, 2)), "OMP_NUM_THREADS": str(threads),
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           "WORKBENCH_OFFLINE": os.environ.get("WORKBENCH_OFFLINE", "")}
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.admin.tick.limit": "60s",
                          "distributed.nanny.pre-spawn-environ": worker_environ()}):
        try:
            import bokeh  # noqa: F401  (the dashboard needs it; workers do not)
            dashboard = "127.0.0.1:0"
        except ImportError:
            dashboard = None
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=dashboard, silence_logs=logging.ERROR, env=env)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


def dashboard_link(client) -> str | None:
    try:
        return client.dashboard_link if client.scheduler_info().get("services", {}).get("dashboard") else None
    except Exception:  # noqa: BLE001 (a link is a convenience)
        return None


# -- lost tasks ----------------------------------------------------------------------------------------------
def scheduler_knows(client, futures) -> set:
    """The keys of ``futures`` whose tasks the scheduler still holds."""
    keys = [f.key for f in futures]

    def known(dask_scheduler=None, keys=()):  # nested, so pickled by value: the scheduler needs no workbench
        return [k for k in keys if k in dask_scheduler.tasks]

    return set(client.run_on_scheduler(known, keys=keys))


class Inputs:
    """The trials' shared inputs, scattered once to every worker, and sent again when the cluster dropped them.

    When the client's connection to the scheduler breaks, Dask cancels every future of the client on reconnect
    (distributed's ``Client._reconnect``), the scattered inputs too; a task submitted on a cancelled input is
    cancelled at once ("lost dependencies"). ``args()`` gives the inputs for the next task, scattering again
    any that was cancelled or lost; ``refresh(known)`` does the same for any the scheduler no longer holds.
    ``values``: name -> value to scatter, or a dict passed as it is (the data named, loaded by the worker)."""

    def __init__(self, client, values: dict):
        self.client, self.values = client, dict(values)
        self.futures = {name: self._send(value) for name, value in self.values.items()}
        self.sent = 1

    def _send(self, value):
        return value if isinstance(value, dict) else self.client.scatter(value, broadcast=True)

    def scattered(self) -> list:
        return [f for f in self.futures.values() if not isinstance(f, dict)]

    def refresh(self, known=None) -> None:
        for name, f in self.futures.items():
            if isinstance(f, dict):
                continue
            if getattr(f, "status", "") in ("cancelled", "lost", "error") or (known is not None and f.key not in known):
                LOG.warning("input %r: its future is %s; scattering it again", name, getattr(f, "status", "?"))
                self.futures[name] = self._send(self.values[name])
                self.sent += 1

    def args(self) -> tuple:
        self.refresh()
        return tuple(self.futures.values())


class LostWatch:
    """Finds futures that will never finish: when the scheduler drops a client's tasks (a connection that
    broke under load, a scheduler restart), the client's futures can stay pending for ever, and a loop that
    waits for them hangs. A future is lost when its status says so, or when ``probe(futures)`` (the keys the
    scheduler holds) has missed it ``LOST_AFTER`` times in a row, asked at most every ``every`` seconds."""

    def __init__(self, probe, every: float = CHECK_SECONDS, clock=time.monotonic):
        self.probe, self.every, self.clock = probe, every, clock
        self.last = clock()
        self.missing: dict = {}

    def lost(self, futures) -> list:
        futures = list(futures)
        out = [f for f in futures if getattr(f, "status", "") == "lost"]
        if self.probe is None or not futures or self.clock() - self.last < self.every:
            return out
        self.last = self.clock()
        try:
            known = self.probe(futures)
        except Exception:  # noqa: BLE001 (a probe that fails is no evidence that anything is lost)
            return out
        for f in futures:
            self.missing[f.key] = 0 if f.key in known else self.missing.get(f.key, 0) + 1
        out += [f for f in futures if self.missing[f.key] >= LOST_AFTER and f not in out]
        if out:
            LOG.warning("lost: %s (statuses %s); the scheduler holds %d of the %d keys asked",
                        [f.key for f in out], [getattr(f, "status", "?") for f in out], len(known), len(futures))
        return out


LOST = ("lost: the Dask scheduler no longer holds this trial's task (its connection to this client broke, or it "
        "restarted), so it would never finish")


def collect(futures: list, watch: LostWatch | None = None, stop=None) -> list:
    """Each future's result in order, waiting until every one has finished or is lost (or ``stop`` is set);
    a failure, a lost or a cancelled task comes back as a FAIL record, as in the trial loop."""
    from distributed.scheduler import KilledWorker

    results: dict = {}
    while len(results) < len(futures):
        pending = [f for f in futures if id(f) not in results]
        for f in pending:
            if f.done():
                results[id(f)] = outcome(f, KilledWorker)
        pending = [f for f in pending if id(f) not in results]
        for f in (watch.lost(pending) if watch is not None else []):
            f.cancel()
            results[id(f)] = {"state": "fail", "error": LOST}
        if stop is not None and stop.is_set():
            for f in pending:
                if id(f) not in results:
                    f.cancel()
                    results[id(f)] = {"state": "fail", "error": "stopped", "interrupted": True}
        if len(results) < len(futures):
            time.sleep(POLL_SECONDS)
    return [results[id(f)] for f in futures]


def outcome(future, killed_worker) -> dict:
    try:
        return future.result()
    except killed_worker as exc:
        return {"state": "fail", "error": f"a worker died running this trial, twice (KilledWorker: {exc})"}
    except CancelledError as exc:  # by Stop, or by the cluster (a reconnect cancels every future): not run
        return {"state": "fail", "error": f"cancelled ({exc})" if str(exc) else "cancelled", "interrupted": True,
                "unrun": True}
    except Exception as exc:  # noqa: BLE001 (lost connections, unpicklable results: the trial failed)
        return {"state": "fail", "error": f"{type(exc).__name__}: {exc}"[:2000]}
