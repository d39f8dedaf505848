"""The live readouts (accuracy and size estimate) of a session, computed off the kernel's main thread.

A slider move changes masks, and the views and the status show it at once. Its accuracy pass and size
estimate take longer (a forward pass over the evaluation images, and gzip of the model's bytes): run on the
kernel's main thread, they would hold up the next key press, and every message after them. So a move only
asks for new readouts; one worker thread computes them for the newest request (moves made while it computes
are coalesced into one computation) and posts the figures back to the main thread, which applies them unless
a newer request or a run made them stale. Outside a kernel (tests, scripts) they are computed at once.

The thread starts a computation only once no request came for ``settle`` seconds (SETTLE: 0.3). On a 2-core
server the forward pass would otherwise compete with the page drawing the move's views (measured with
bench/browser_latency.py on LeNet-5: the last view's p95 0.34 s at once, 0.30 s with the wait), and a user
holding a key gets one pass at the end instead of several on the way.
"""

from __future__ import annotations

import threading
from typing import Callable

from workbench.widgets.dispatch import in_kernel, post

SETTLE = 0.3  # seconds without a new request before the thread computes (see above)


class LiveReadouts:
    """``compute()`` (any thread) returns the figures; ``apply(figures)`` (main thread) shows them;
    ``current()`` (main thread) says whether figures may still be shown (e.g. not while a run trains);
    ``failed(message)`` (main thread) hears of a computation that raised."""

    def __init__(self, compute: Callable[[], dict], apply: Callable[[dict], None],
                 current: Callable[[], bool] = lambda: True, failed: Callable[[str], None] = lambda message: None,
                 background: bool | None = None, settle: float = SETTLE):
        if not 0 <= settle <= 10:
            raise ValueError(f"settle must be from 0 to 10 seconds. Received: settle={settle!r}")
        self.compute, self.apply, self.current, self.failed = compute, apply, current, failed
        self.settle = settle
        self.background = in_kernel() if background is None else background
        self.lock = threading.RLock()  # held while computing: take it to change the model without a reader
        self.computed = 0  # how many computations ran (fewer than requests when moves were coalesced)
        self._wanted = self._started = self._done = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """New figures are needed (the masks, weights or bits changed)."""
        if not self.background:
            with self.lock:
                figures = self.compute()
            self.computed += 1
            self.apply(figures)
            return
        with self._changed:
            self._wanted += 1
            self._changed.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="live-readouts", daemon=True)
            self._thread.start()

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the newest request's figures were applied (or dropped as stale); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._done >= self._wanted, timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._wanted > self._started)
                while self.settle > 0:  # until the requests stop for ``settle`` seconds
                    seen = self._wanted
                    self._changed.wait_for(lambda: self._wanted != seen, self.settle)
                    if self._wanted == seen:
                        break
                version = self._started = self._wanted
            figures, failure = None, ""
            try:
                with self.lock:
                    figures = self.compute()
                self.computed += 1
            except Exception as exc:  # noqa: BLE001 (reported on the main thread, as the state's error)
                failure = f"the live accuracy and size could not be measured: {type(exc).__name__}: {exc}"
            post(self._deliver, version, figures, failure)

    def _deliver(self, version: int, figures: dict | None, failure: str = "") -> None:
        if version == self._wanted and self.current():
            if failure:
                self.failed(failure)
            else:
                self.apply(figures)
        with self._changed:
            self._done = max(self._done, version)
            self._changed.notify_all()
