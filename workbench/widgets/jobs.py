"""Run long work (training, scans) off the kernel's main thread, with progress and a Stop that restores.

The thread talks to the page only through widget state (never print), so no parent header is
set on it: messages carrying an old request's header are dropped by some front ends.
"""

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
    def start(self) -> "Job":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
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
