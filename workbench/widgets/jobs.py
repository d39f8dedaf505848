"""Run long work (training, scans) off the kernel's main thread, with progress and a Stop that restores."""

from __future__ import annotations

import threading
import traceback
from typing import Callable


class Job:
    """One background run: ``work(stop_event)`` runs in a thread; ``restore()`` runs if it is stopped or fails."""

    def __init__(self, name: str, work: Callable[[threading.Event], object], restore: Callable[[], None],
                 on_done: Callable[["Job"], None]):
        self.name = name
        self.stop_event = threading.Event()
        self.result = None
        self.error: str | None = None
        self.stopped = False
        self._work, self._restore, self._on_done = work, restore, on_done
        self.thread = threading.Thread(target=self._run, name=f"workbench-{name}", daemon=True)
        try:  # keep output from the thread in the cell that started it (ipywidgets#4020)
            from IPython import get_ipython

            shell = get_ipython()
            self._parent = shell.kernel.get_parent() if shell is not None and hasattr(shell, "kernel") else None
        except Exception:  # noqa: BLE001 - no IPython: nothing to route
            self._parent = None

    def start(self) -> "Job":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
        if self._parent is not None:
            try:
                from IPython import get_ipython

                get_ipython().kernel.set_parent(self._parent)
            except Exception:  # noqa: BLE001
                pass
        try:
            self.result = self._work(self.stop_event)
            if self.stop_event.is_set():
                self.stopped = True
                self._restore()
        except Exception as exc:  # noqa: BLE001 - any failure is reported in the UI, and undone
            if self.stop_event.is_set():  # the work gave up because it was asked to stop
                self.stopped = True
                self._restore()
                return
            self.error = f"{type(exc).__name__}: {exc}"
            self.traceback = traceback.format_exc()
            try:
                self._restore()
            except Exception as again:  # noqa: BLE001
                self.error += f" (and restoring failed: {again})"
        finally:
            self._on_done(self)
