"""The Studio's Search panel without a browser: a real (tiny) search on one Dask worker fills the view, and
clicking a point loads that trial's settings into the sliders and its int8 model as the session's export."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def panel(trained_lenet, small_mnist):
    from workbench.widgets.search_panel import SearchPanel
    from workbench.widgets.state import SessionState

    state = SessionState(trained_lenet, small_mnist.subset(train=1000, validation=300), model_name="lenet5")
    panel = SearchPanel(state)
    panel.trials.value, panel.workers.value, panel.epochs.value, panel.max_loss.value = 3, 1, 1, 50.0
    assert panel.start(), state.error
    assert state.wait(600)
    assert not state.busy and state.error == "", state.error
    return panel


@pytest.mark.slow
def test_finished_trials_appear_as_points_with_the_front_and_the_pick(panel):
    frame = panel.state.trials
    done = frame[frame["state"] == "complete"]
    assert len(done) >= 1 and panel.state.done == 3
    points, front, pick, budget = panel.view.figure.data
    assert sorted(points.customdata) == sorted(done["trial"].tolist())
    assert list(points.x) == pytest.approx([float(done.set_index("trial").loc[n, "gzip_bytes"]) for n in points.customdata])
    assert set(front.customdata) <= set(points.customdata) and len(front.customdata) >= 1
    assert list(pick.customdata) == [panel.state.pick]
    assert budget.y[0] == pytest.approx(panel.state.baseline_validation - 0.5)
    assert "search finished" in panel.state.message and "3 of 3 trials" in panel.status.value
    assert not panel.start_button.disabled and panel.stop_button.disabled
    assert panel.view.empty_message() is None


def test_an_idle_search_panel_says_what_it_will_show():
    from workbench.widgets.search_panel import SearchPanel
    from workbench.widgets.state import SessionState

    panel = SearchPanel(SessionState())
    assert "No finished trial yet" in panel.view.empty_message()
    assert not panel.start() and "No model loaded" in panel.state.session.error


@pytest.mark.slow
def test_clicking_a_point_applies_its_settings_and_its_model(panel):
    from plotly.callbacks import Points

    state, search = panel.state.session, panel.state
    panel.widget  # displayed: the view's figure is now a FigureWidget with click handlers, as on the page
    points, front = panel.view.figure.data[0], panel.view.figure.data[1]
    number = int(front.customdata[0])  # a trial on the front: its fine-tuned model is kept
    index = list(points.customdata).index(number)
    assert set(search.weights) == {int(n) for n in front.customdata}  # only the front's models stay in memory
    points._dispatch_on_click(Points(point_inds=[index], xs=[points.x[index]], ys=[points.y[index]],
                                     trace_name="trials", trace_index=0), None)
    configs = search.space.configs(search.params[number])
    assert state.error == ""
    assert state.layer_sparsity == pytest.approx(configs["prune"].layer_sparsity, abs=2e-3)
    assert state.weight_bits == configs["quant"].layer_weight_bits
    assert state.epochs == configs["finetune"].epochs and state.schedule == "polynomial"
    kept = search.weights[number]
    for layer in state.model.layers:  # the trial's fine-tuned weights and masks are the session's model now
        if layer.weights:
            assert all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), kept[layer.name])), layer.name
    assert state.export["tflite"] == search.artifacts[number] and state.export["label"] == f"search trial {number}"
    assert f"search trial {number} loaded" in state.status and "fine-tuned model and masks" in state.status
    before = [w.copy() for w in state.model.get_weights()]
    assert not state.load_weights({"fc1": kept["fc1"]}, "partial") and "the session's model has" in state.error
    wrong = {**kept, "fc2": [w[:1] for w in kept["fc2"]]}
    assert not state.load_weights(wrong, "wrong") and "Layer 'fc2' holds weights of shapes" in state.error
    assert all(np.array_equal(a, b) for a, b in zip(before, state.model.get_weights()))  # nothing half-loaded
