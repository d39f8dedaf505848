"""Live readouts off the main thread: coalesced, never stale, failures reported (widgets/readouts.py)."""

from __future__ import annotations

import threading
import time

import pytest

from workbench.nn.evaluate import accuracy
from workbench.widgets import SessionState
from workbench.widgets.readouts import LiveReadouts


class Slow:
    """A computation that takes ``seconds`` and reports the value it saw when it started."""

    def __init__(self, seconds=0.2):
        self.value, self.seconds, self.started = 0, seconds, []

    def __call__(self):
        seen = self.value
        self.started.append(seen)
        time.sleep(self.seconds)
        return {"value": seen}


def test_moves_made_while_it_computes_are_coalesced_and_the_last_one_is_shown():
    slow, shown = Slow(), []
    readouts = LiveReadouts(slow, shown.append, background=True)
    for value in range(1, 6):  # five moves within 0.2 s
        slow.value = value
        readouts.request()
        time.sleep(0.01)
    assert readouts.wait(10)
    assert shown[-1] == {"value": 5}  # the figures of the newest state
    assert readouts.computed <= 2 and {"value": 1} not in shown[1:]  # not one pass per move


def test_the_pass_waits_until_the_moves_stop_then_runs_once():
    slow, shown = Slow(0.01), []
    readouts = LiveReadouts(slow, shown.append, background=True, settle=0.15)
    start = time.perf_counter()
    for value in range(1, 6):  # five moves 0.05 s apart: each within the settle time of the one before
        slow.value = value
        readouts.request()
        time.sleep(0.05)
    assert readouts.wait(10)
    assert slow.started == [5] and shown == [{"value": 5}]  # one pass, of the last state
    assert time.perf_counter() - start >= 0.2 + 0.15  # not before the moves stopped for the settle time
    with pytest.raises(ValueError, match="Received: settle=-1"):
        LiveReadouts(slow, shown.append, settle=-1)


def test_figures_of_an_older_request_or_during_a_run_are_dropped():
    slow, shown, busy = Slow(0.3), [], threading.Event()
    readouts = LiveReadouts(slow, shown.append, current=lambda: not busy.is_set(), background=True)
    slow.value = 1
    readouts.request()
    time.sleep(0.05)
    busy.set()  # a run starts while the pass computes: its figures would describe weights that are changing
    assert readouts.wait(10) and shown == []
    busy.clear()
    readouts.request()
    assert readouts.wait(10) and shown == [{"value": 1}]


def test_a_failing_computation_is_reported_not_swallowed():
    said = []

    def broken():
        raise ValueError("shapes (3,) and (4,)")
    readouts = LiveReadouts(broken, lambda figures: None, failed=said.append, background=True)
    readouts.request()
    assert readouts.wait(10)
    assert said and "ValueError: shapes (3,) and (4,)" in said[0]


def test_outside_a_kernel_the_figures_are_there_at_once():
    shown = []
    readouts = LiveReadouts(lambda: {"value": 7}, shown.append)
    assert readouts.background is False
    readouts.request()
    assert shown == [{"value": 7}] and readouts.computed == 1


@pytest.mark.slow
def test_a_session_in_background_mode_ends_with_the_accuracy_of_its_final_masks(trained_lenet, small_mnist):
    state = SessionState(trained_lenet, small_mnist.subset(train=1024, test=300), "lenet5", eval_size=200)
    state.readouts.background = True
    for sparsity in (0.5, 0.7, 0.9, 0.95):
        assert state.set_layer_sparsity("fc1", sparsity)
    assert state.set_weight_bits("fc1", 4)
    assert state.readouts.wait(60)
    assert state.accuracy == accuracy(state.model, state.eval_x, state.eval_y)
    assert state.sizes == state._measure()["sizes"] and state.error == ""
