"""Widgets without a browser: state, figure data, callbacks, Stop, configuration, bad values."""

from __future__ import annotations

import base64
import datetime
import io
import json
import threading

import numpy as np
import pytest

from workbench.metrics.tflite_tensors import weight_tensors
from workbench.metrics.weights import weight_histogram
from workbench.widgets import Dashboard, SessionState


@pytest.fixture
def non_json_messages(monkeypatch):
    """Every widget message the kernel sends is checked as Jupyter's session packs it (json, allow_nan=False):
    NaN or inf in one is logged as 'Out of range float values are not JSON compliant' and the message is lost."""
    from ipywidgets.widgets import widget as widget_module

    found, sent = [], []
    original_send, original_create = widget_module.Widget._send, widget_module.comm.create_comm

    def check(kind, msg):
        sent.append(kind)
        try:
            json.dumps(msg, allow_nan=False, default=str)
        except ValueError:
            found.append((kind, str(msg)[:200]))

    def send(self, msg, buffers=None):  # state updates
        check(type(self).__name__, msg)
        return original_send(self, msg, buffers)

    def create_comm(*args, **kwargs):  # a widget's opening state
        check("open", kwargs.get("data"))
        return original_create(*args, **kwargs)
    monkeypatch.setattr(widget_module.Widget, "_send", send)
    monkeypatch.setattr(widget_module.comm, "create_comm", create_comm)
    return found, sent


@pytest.fixture
def board(trained_lenet, small_mnist):
    state = SessionState(trained_lenet, small_mnist.subset(train=1024, test=300), "lenet5", eval_size=200)
    return Dashboard(state)


def _weights(state):
    return [w.copy() for w in state.model.get_weights()]


def test_histogram_counts_equal_numpy_on_the_kernel(board):
    state = board.state
    assert state.set_layer_sparsity("conv2", 0.6) and state.select_layer("conv2")
    kernel = state.layer("conv2").kernel.numpy()
    mask = state.layer("conv2").get_mask()
    kept, pruned, levels = board.histogram.figure.data
    edges = np.linspace(kernel.min(), kernel.max(), board.histogram.bins + 1)
    assert np.array_equal(np.asarray(kept.y) + np.asarray(pruned.y), np.histogram(kernel, edges)[0])
    assert int(np.sum(pruned.y)) == int((mask == 0).sum()) == round(0.6 * kernel.size)
    assert np.array_equal(pruned.y, np.histogram(kernel[mask == 0], edges)[0])
    assert len(levels.x) == 0
    assert state.set_weight_bits("conv2", 4)
    assert len(board.histogram.figure.data[2].x) == 15


def _image_pixels(source: str) -> np.ndarray:
    """A view's PNG data URI decoded with Pillow: (rows, cols, 4) RGBA."""
    from PIL import Image

    assert source.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGBA"))


def test_heatmap_blank_cells_equal_the_mask_zeros(board):
    state = board.state
    state.set_layer_sparsity("conv1", 0.5)
    state.select_layer("conv1")
    pixels = _image_pixels(board.heatmap.figure.data[0].source)
    mask = state.layer("conv1").get_mask()  # (5, 5, 1, 20) -> map (20, 25)
    assert pixels.shape == (20, 25, 4)
    assert np.array_equal(pixels[..., 3] == 0, (mask.reshape(-1, 20).T == 0))  # pruned cells are transparent
    bars = board.heatmap.figure.data[1]
    assert np.allclose(bars.x, 1 - mask.reshape(-1, 20).mean(axis=0))
    # A large kernel shows its corner, cell for cell.
    state.set_layer_sparsity("fc1", 0.9)
    state.select_layer("fc1")
    pixels = _image_pixels(board.heatmap.figure.data[0].source)
    fc_mask = state.layer("fc1").get_mask().T
    assert pixels.shape[:2] == (min(fc_mask.shape[0], 128), min(fc_mask.shape[1], 400))
    assert np.array_equal(pixels[..., 3] == 0, fc_mask[:pixels.shape[0], :pixels.shape[1]] == 0)
    overview = board.overview.figure.data[0]
    assert list(overview.y) == ["conv1", "conv2", "fc1", "fc2"] and overview.x[2] == pytest.approx(0.9)


def test_one_slider_move_fires_each_callback_once(board):
    state, controls = board.state, board.controls
    seen = []
    state.observe(lambda change: seen.append(change["new"]), names=["masks_version"])
    before = {view: view.redraws for view in board.views}
    controls.layer_sliders["fc1"].value = 0.8
    assert len(seen) == 1
    assert state.layer_sparsity["fc1"] == 0.8
    assert board.histogram.redraws == before[board.histogram] + 1
    assert board.heatmap.redraws == before[board.heatmap] + 1
    assert board.overview.redraws == before[board.overview] + 1
    assert board.curves.redraws == before[board.curves]  # nothing to redraw there
    controls.bits_sliders["fc1"].value = 5
    assert board.histogram.redraws == before[board.histogram] + 2 and board.heatmap.redraws == before[board.heatmap] + 1


def test_bad_values_are_refused_and_change_nothing(board):
    state = board.state
    state.set_layer_sparsity("fc1", 0.5)
    weights, config = _weights(state), state.get_config()
    assert not state.set_layer_sparsity("fc1", 1.0) and "Received: sparsity=1.0" in state.error
    assert not state.set_layer_sparsity("fc1", -0.2)
    assert not state.set_weight_bits("fc1", 9) and "from 2 to 8" in state.error
    assert not state.set_weight_bits("fc1", 1)
    assert not state.set_activation_bits(12)
    assert not state.set_layer_threshold("fc1", -1.0)
    assert not state.set_layer_sparsity("nope", 0.5) and "No prunable layer" in state.error
    assert not state.set_training(epochs=0)
    assert state.get_config() == config
    assert all(np.array_equal(a, b) for a, b in zip(weights, _weights(state)))
    assert "⚠" in board.controls.error.value


def test_threshold_mode_prunes_below_the_threshold(board):
    state = board.state
    kernel = np.abs(state.layer("conv2").kernel.numpy())
    t = float(np.quantile(kernel, 0.3))
    assert state.set_layer_threshold("conv2", t)
    mask = state.layer("conv2").get_mask()
    assert np.array_equal(mask, (kernel > t).astype(np.float32))
    assert state.layer_sparsity["conv2"] == pytest.approx((kernel <= t).mean())


def test_configuration_round_trips_through_json(board, trained_lenet, small_mnist):
    state = board.state
    state.set_layer_sparsity("fc1", 0.9)
    state.set_layer_sparsity("conv2", 0.4)
    state.set_weight_bits("fc1", 5)
    state.set_training(schedule="polynomial", epochs=3, learning_rate=1e-3)
    text = state.to_json()
    other = SessionState(trained_lenet, small_mnist.subset(train=256, test=200), "lenet5", eval_size=200)
    assert other.load_config(text), other.error
    assert other.get_config()["layer_sparsity"] == json.loads(text)["layer_sparsity"]
    assert json.loads(other.to_json()) == {**json.loads(text), "dataset": other.dataset_name}
    assert np.array_equal(other.layer("fc1").get_mask(), state.layer("fc1").get_mask())


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    ('{"model": "mobilenet_v1"}', "for model 'mobilenet_v1'"),
    ('{"layer_sparsity": {"fc1": 1.5}}', "fraction in [0, 1)"),
    ('{"weight_bits": {"fc1": 16}}', "from 2 to 8"),
    ('{"layer_sparsity": {"fc7": 0.5}}', "does not have"),
    ('{"surprise": 1}', "Unknown configuration keys"),
    ("[1, 2]", "JSON object"),
])
def test_malformed_configuration_changes_nothing(board, bad, message):
    state = board.state
    state.set_layer_sparsity("fc1", 0.3)
    weights, config = _weights(state), state.get_config()
    assert not state.load_config(bad)
    assert message in state.error
    assert state.get_config() == config
    assert all(np.array_equal(a, b) for a, b in zip(weights, _weights(state)))


def test_config_load_from_upload_widget(board):
    state, controls = board.state, board.controls
    text = json.dumps({"layer_sparsity": {"fc1": 0.7}})
    controls.config_upload.value = ({"name": "c.json", "type": "application/json", "size": len(text),
                                     "content": memoryview(text.encode()),
                                     "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    controls.config_load.click()
    assert state.layer_sparsity["fc1"] == pytest.approx(0.7) and state.error == ""
    controls.config_text.value = "{broken"
    controls.config_load.click()
    assert "not valid JSON" in state.error and state.layer_sparsity["fc1"] == pytest.approx(0.7)
    controls.config_save.click()
    assert json.loads(controls.config_text.value) == state.get_config()
    assert "download=" in controls.config_link.value


@pytest.mark.slow
def test_stop_restores_the_weights_from_before_the_step(board):
    state = board.state
    state.set_layer_sparsity("fc1", 0.8)
    before = _weights(state)
    state.set_training(epochs=20)
    state.record_every = 1
    first = threading.Event()
    state.observe(lambda change: first.set(), names=["records"])
    assert state.fine_tune()
    assert state.busy and all(c.disabled for c in board.controls.conflicting())
    assert not board.controls.buttons["stop"].disabled
    assert not state.set_layer_sparsity("fc1", 0.1) and "run is going" in state.error  # conflicting change refused
    assert first.wait(60)
    assert state.stop()
    assert state.wait(30)
    assert not state.busy and "stopped" in state.status
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(state)))
    assert not any(c.disabled for c in board.controls.conflicting())
    assert len(board.curves.figure.data[0].x) >= 1


@pytest.mark.slow
def test_fine_tune_quantize_export_scan_update_views(non_json_messages, board):
    state = board.state
    board.widget  # displayed: every view's redraws are messages to the page, checked by non_json_messages
    state.criterion, state.mode = "taylor", "threshold"  # every criterion and mode draws without NaN too
    state.criterion, state.mode = "magnitude", "sparsity"
    state.set_layer_sparsity("fc1", 0.9)
    state.select_layer("fc1")  # the kernel map has pruned cells (they were NaN in a Heatmap's JSON)
    state.set_training(epochs=1)
    assert state.fine_tune() and state.wait(120), state.error
    assert state.error == "" and "finished" in state.status
    batch = [r for r in state.records if r["kind"] == "batch"]
    assert list(board.curves.figure.data[0].x) == [r["step"] for r in batch]
    assert list(board.curves.figure.data[4].y) == [r["est_gzip_bytes"] for r in state.records]
    mask = state.layer("fc1").get_mask()
    assert np.all(state.layer("fc1").effective_kernel()[mask == 0] == 0)
    assert "QAT model" not in board.controls.metrics.value
    assert state.quantize() and state.wait(120) and state.qat_model is not None, state.error
    readout = board.controls.metrics.value  # both figures, each labelled with what it measures
    assert f"float model (pruned, masks applied): <b>{state.accuracy:.2%}</b>" in readout
    assert f"QAT model (fake-quantized): <b>{state.run.validation['qat']:.2%}</b>" in readout
    assert state.export_model(label="fc1 90%") and state.wait(120), state.error
    run = state.runs[-1]
    assert run["label"] == "fc1 90%" and run["gzip_bytes"] < run["tflite_bytes"] < run["fp32_bytes"]
    assert list(board.pareto.figure.data[0].x) == [run["gzip_bytes"]]
    assert "download='model_int8.tflite'" in board.controls.download.value
    micro = run["micro"]  # the artifact ran on TensorFlow Lite Micro too, and the page says how
    assert micro["runs"] and f"in a {micro['arena_bytes']:,} B tensor arena" in board.controls.download.value
    assert run["export_target"] == "size" and run["speed"]["int8"]["batch1"]["runs"] == 200
    assert "int8 (size) batch 1: p50" in board.controls.download.value  # latency next to the size
    assert not state.set_export_target("fast") and "Received: target='fast'" in state.error
    board.controls.export_target.value = "speed"  # the control, as a user clicks it
    assert state.export_target == "speed" and state.get_config()["export_target"] == "speed"
    assert state.set_weight_bits("fc1", 4) and state.export_model(label="for speed") and state.wait(120), state.error
    fast = state.runs[-1]
    assert fast["export_target"] == "speed" and fast["latency_ms"] == fast["speed"]["int8"]["batch1"]["p50_ms"]
    assert not any(t.packed_int4 for t in weight_tensors(state.export["tflite"]))
    assert "int8 (speed) batch 1: p50" in board.controls.download.value
    assert state.scan(sparsities=(0.0, 0.9), eval_size=100) and state.wait(120), state.error
    frame = state.sensitivity
    assert len(frame) == 8 and [t.name for t in board.sensitivity.figure.data] == state.layers
    assert list(board.sensitivity.figure.data[3].y) == frame[frame.layer == "fc2"].accuracy.tolist()
    found, sent = non_json_messages
    assert len(sent) > 50 and found == []  # the views did talk to the page, never with NaN or inf


def test_a_figure_opens_with_its_data_and_later_moves_reach_it_as_deltas(board, monkeypatch):
    """The page draws a figure from its opening state; after that, a redraw with the same traces is one plotly
    update message (``_py2js_update``) to the same figure, holding what changed, not a new figure."""
    import ipywidgets.comm
    from ipywidgets.widgets import widget as widget_module

    opened, create = {}, ipywidgets.comm.create_comm
    updates, send = [], widget_module.Widget._send

    def spy(**kwargs):
        channel = create(**kwargs)
        opened[channel.comm_id] = kwargs["data"]["state"]
        return channel

    def spy_send(widget, msg, buffers=None):
        if "_py2js_update" in msg.get("state", {}) and msg["state"]["_py2js_update"]:
            updates.append((widget, msg["state"]["_py2js_update"], buffers))
        return send(widget, msg, buffers)
    monkeypatch.setattr(ipywidgets.comm, "create_comm", spy)
    monkeypatch.setattr(widget_module.Widget, "_send", spy_send)
    box = board.histogram.widget
    first = board.histogram.figure
    sent = opened[first.comm.comm_id]
    assert [trace["name"] for trace in sent["_widget_data"]] == [trace.name for trace in first.data]
    assert sent["_widget_layout"]["title"] == first.layout.title.to_plotly_json()
    for sparsity in (0.3, 0.6):
        updates.clear()
        board.state.set_layer_sparsity("conv1", sparsity)
        figure = board.histogram.figure
        assert figure is first and box.children == (first,)  # the same figure on the page
        pruned = np.asarray(figure.data[1].y)
        assert pruned.sum() == round(sparsity * 500)
        mine = [(msg, buffers) for widget, msg, buffers in updates if widget is first]
        assert len(mine) == 1  # one message per redraw
        message = mine[0][0]
        traces, changed = message["style_traces"], message["style_data"]
        assert set(changed) == {"y"}  # only what changed: the counts (no uid, no x)
        assert np.array_equal(np.asarray(changed["y"][traces.index(1)], dtype=float), pruned)


# ----- the Studio runs the pipeline's stages (issue: one pipeline of stages) ---------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sparsity", "global"])
def test_polynomial_fine_tune_ends_at_the_sparsities_the_sliders_show(board, mode):
    """AGP fine-tuning used to reset every mask to ones (per-layer targets scaled by a 0 global sparsity)."""
    from workbench.pruning.masks import sparsity_of

    state = board.state
    if mode == "global":
        assert state.set_global_sparsity(0.8)
    else:
        for name, s in {"conv1": 0.3, "conv2": 0.6, "fc1": 0.9, "fc2": 0.5}.items():
            assert state.set_layer_sparsity(name, s)
    shown = dict(state.layer_sparsity)
    assert state.set_training(schedule="polynomial", epochs=1)
    assert state.fine_tune() and state.wait(180), state.error
    assert state.error == "" and "finished" in state.status
    for name in state.layers:
        actual = sparsity_of(state.layer(name).get_mask())
        assert actual == pytest.approx(shown[name], abs=1e-3), name
        assert state.layer_sparsity[name] == pytest.approx(actual)
        assert board.controls.layer_sliders[name].value == pytest.approx(actual, abs=0.011)
    overview = board.overview.figure.data[0]
    assert list(overview.x) == pytest.approx([shown[n] for n in overview.y], abs=1e-3)


@pytest.mark.slow
def test_a_slider_move_after_fine_tuning_ranks_weights_by_their_current_values(board):
    from workbench.pruning.masks import mask_for_sparsity

    state = board.state
    assert state.set_layer_sparsity("fc2", 0.5)  # scores cached from the baseline weights
    state.set_training(schedule="one_shot", epochs=2, learning_rate=1e-2)
    before = state.layer("fc2").kernel.numpy().copy()
    assert state.fine_tune() and state.wait(180), state.error
    after = state.layer("fc2").kernel.numpy()
    assert not np.allclose(before, after)
    assert state.set_layer_sparsity("fc2", 0.7)  # above 0.5: the ranking of the trained weights decides
    expected = mask_for_sparsity(np.abs(after), 0.7)
    assert np.array_equal(state.layer("fc2").get_mask(), expected)
    assert not np.array_equal(expected, mask_for_sparsity(np.abs(before), 0.7))


@pytest.mark.slow
def test_every_curve_names_the_split_it_was_measured_on(board):
    state = board.state
    data = state.data
    state.set_training(epochs=1)
    assert state.fine_tune() and state.wait(180), state.error
    train, val, *sizes = board.curves.figure.data
    assert f"{len(data.y_train):,} train images" in train.name
    assert f"{len(data.y_val):,} validation images" in val.name
    epoch = [r for r in state.records if r["kind"] == "epoch"]
    assert list(val.y) == [r["val_accuracy"] for r in epoch]
    # The validation curve is Keras' per-epoch evaluation of the validation split: recompute it.
    from workbench.nn.evaluate import accuracy

    assert val.y[-1] == pytest.approx(accuracy(state.model, data.x_val, data.y_val), abs=0.02)
    assert f"{len(state.eval_y)} validation images" in board.controls.metrics.value
    assert state.accuracy == pytest.approx(accuracy(state.model, data.x_val[:len(state.eval_y)],
                                                    data.y_val[:len(state.eval_y)]))
    assert state.scan(sparsities=(0.0, 0.5), eval_size=100) and state.wait(120), state.error
    assert board.sensitivity.figure.layout.yaxis.title.text.startswith("validation accuracy (100 images")
    assert state.export_model() and state.wait(120), state.error
    assert state.runs[-1]["split"] == "validation" and state.runs[-1]["images"] == len(data.y_val)


# ----- pruning in every mode: criterion x prune-by (x schedule, below) -------------------------------------
def _views_show_the_masks(board):
    from workbench.pruning.masks import sparsity_of

    state = board.state
    for name in state.layers:
        state.select_layer(name)
        mask = state.layer(name).get_mask()
        assert int(np.sum(board.histogram.figure.data[1].y)) == int((mask == 0).sum()), name
        assert int(np.sum(board.histogram.figure.data[0].y)) == int((mask != 0).sum()), name
        assert state.layer_sparsity[name] == pytest.approx(sparsity_of(mask))
    overview = board.overview.figure.data[0]
    assert list(overview.x) == pytest.approx([sparsity_of(state.layer(n).get_mask()) for n in overview.y])


@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
@pytest.mark.parametrize("mode", ["sparsity", "threshold"])
def test_one_slider_step_changes_sparsity_by_a_bounded_amount(board, criterion, mode):
    from workbench.pruning.masks import sparsity_of

    state, controls = board.state, board.controls
    controls.criterion.value = criterion
    controls.mode.value = mode
    assert state.criterion == criterion and state.mode == mode and state.error == ""
    rng = np.random.default_rng(0)
    for name in state.layers:
        if mode == "sparsity":
            slider = controls.layer_sliders[name]
            for position in sorted(rng.choice(99, 6, replace=False)):
                slider.value = position / 100
                before = sparsity_of(state.layer(name).get_mask())
                slider.value = (position + 1) / 100
                assert sparsity_of(state.layer(name).get_mask()) - before == pytest.approx(0.01, abs=0.002)
            continue
        slider = controls.threshold_sliders[name]
        scores = state.scores(name)
        zero_share = float((scores == 0).mean())
        steps = round((slider.max - slider.min) / slider.step)
        assert steps == controls.THRESHOLD_STEPS + 2  # below the scores: "off", then "scores of 0 only"
        slider.value = 10 ** (slider.min + slider.step)  # cuts only the weights whose score is exactly 0
        assert sparsity_of(state.layer(name).get_mask()) == pytest.approx(zero_share) and state.error == ""
        slider.value = 10 ** slider.min  # off
        assert sparsity_of(state.layer(name).get_mask()) == 0.0 and state.layer_threshold[name] == 0.0
        for position in sorted(rng.choice(steps - 2, 8, replace=False) + 1):
            slider.value = 10 ** (slider.min + position * slider.step)
            previous = sparsity_of(state.layer(name).get_mask())
            slider.value = 10 ** (slider.min + (position + 1) * slider.step)
            now = sparsity_of(state.layer(name).get_mask())
            assert state.error == "" or "every weight" in state.error
            assert 0 <= now - previous <= 0.08, (name, position, previous, now)
            # The threshold is in the criterion's units: exactly the weights scoring at or below it are cut.
            expected = (scores > state.layer_threshold[name]).astype(np.float32)
            assert np.array_equal(state.layer(name).get_mask(), expected)
    _views_show_the_masks(board)


def test_taylor_threshold_sliders_read_the_real_cut_after_an_apply(board):
    """After a Taylor Apply, every threshold slider used to read 0.0001 and the histogram kept magnitude lines."""
    state, controls = board.state, board.controls
    controls.criterion.value = "taylor"
    assert state.set_global_sparsity(0.6)
    controls.mode.value = "threshold"
    for name in state.layers:
        scores = state.scores(name)
        t = state.layer_threshold[name]
        mask = state.layer(name).get_mask()
        assert t == pytest.approx(scores[mask == 0].max()) and t < scores[mask != 0].min()
        assert controls.threshold_sliders[name].value == pytest.approx(t, rel=0.05)
    state.select_layer("conv2")
    h = board.histogram
    assert h.figure.layout.xaxis.title.text == "log10 score" and "Taylor" in h.figure.layout.title.text
    assert [shape.x0 for shape in h.figure.layout.shapes] == pytest.approx([np.log10(state.layer_threshold["conv2"])])
    controls.criterion.value = "magnitude"  # back: the cut is restated in |w|, at the same sparsities
    t = state.layer_threshold["conv2"]
    kernel = np.abs(state.layer("conv2").kernel.numpy())
    assert np.array_equal(state.layer("conv2").get_mask(), (kernel > t).astype(np.float32))
    assert [shape.x0 for shape in h.figure.layout.shapes] == pytest.approx([-t, t])
    _views_show_the_masks(board)


@pytest.mark.slow
@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
@pytest.mark.parametrize("schedule", ["one_shot", "polynomial"])
def test_fine_tune_in_every_mode_leaves_views_equal_to_the_masks(board, criterion, schedule):
    state, controls = board.state, board.controls
    controls.criterion.value = criterion
    controls.mode.value = "threshold"
    for name in ("conv2", "fc1"):
        slider = controls.threshold_sliders[name]
        slider.value = 10 ** (slider.min + 150 * slider.step)
    targets = dict(state.layer_sparsity)
    assert state.set_training(schedule=schedule, epochs=1)
    assert state.fine_tune() and state.wait(180), state.error
    assert state.error == ""
    assert state.layer_sparsity == pytest.approx(targets, abs=1e-3)
    _views_show_the_masks(board)


def test_a_new_session_clears_the_previous_models_sensitivity(board, trained_lenet, small_mnist):
    import pandas as pd

    state = board.state
    state.sensitivity = pd.DataFrame({"layer": ["conv1"], "sparsity": [0.5], "accuracy": [0.9], "params": [500]})
    assert len(board.sensitivity.figure.data) == 1 and board.sensitivity.empty_message() is None
    state.set_session(trained_lenet, small_mnist.subset(train=256, test=100), "lenet5", eval_size=100)
    assert state.sensitivity is None and len(board.sensitivity.figure.data) == 0
    assert "No scan yet" in board.sensitivity.empty_message()  # words, not bare axes
    assert tuple(board.sensitivity.figure.layout.xaxis.range) == (0, 1)
    assert "No training yet" in board.curves.empty_message()
    assert [a.text for a in board.curves.figure.layout.annotations][:2] == ["accuracy", "size (bytes)"]


def test_runs_table_has_human_headers_a_qat_column_and_separators():
    from workbench.widgets.studio import Studio

    app = Studio(load=False)
    assert app.runs_html() == ""
    first = {"label": "run 1", "model": "lenet5", "dataset": "mnist", "qat": True, "split": "validation",
             "sparsity": 0.9, "int8_accuracy": 0.9812, "delta_points": -0.25, "fp32_bytes": 1724320,
             "tflite_bytes": 439744, "gzip_bytes": 80851, "entropy_bytes": 63961, "compression_ratio": 21.33,
             "micro": {"runs": True, "arena_bytes": 18062}, "export_target": "speed", "latency_ms": 0.0734,
             "speedup": 1.456}
    app.state.runs = [first, {**first, "label": "run 2", "micro": {"runs": False, "reason": "no TOPK_V2"}},
                      {k: v for k, v in first.items() if k != "micro"}]
    html = app.runs_table.value
    for text in ("QAT", "measured on", "validation", "gzip -9 bytes", "1,724,320", "80,851", "98.12%", "-0.25",
                 "21.3×", "yes", "TFLite Micro arena", "18,062 B", "does not run", "export for", "speed",
                 "int8 latency, batch 1 (p50)", "0.0734 ms", "1.46×"):
        assert text in html, text
    assert "gzip_bytes" not in html and "compression_ratio" not in html and "nan" not in html


def test_the_pickers_follow_the_session(trained_lenet, small_mnist):
    """After an upload the pickers show the uploaded model and 'user' data; after a load that was stopped they
    show the session again, not what was picked; Load with the uploaded model's name refuses clearly."""
    from workbench.widgets.studio import Studio

    app = Studio(load=False)
    user = small_mnist.subset(train=300)
    user.name = "my_digits"
    app.state.set_session(trained_lenet, user, "my_lenet")
    assert app.model_picker.value == "my_lenet" and "my_lenet" in app.model_picker.options
    assert app.data_picker.value == "user"
    app.model_picker.value = "mobilenet_v1"  # picked, then a load of it is stopped: busy goes True then False
    app.state.busy = True
    app.state.busy = False
    assert app.model_picker.value == "my_lenet"
    assert not app.load_picked() and "already open" in app.state.error
    app.state.set_session(trained_lenet, small_mnist.subset(train=300), "lenet5")
    assert app.model_picker.value == "lenet5" and app.data_picker.value == "mnist"


def test_time_left_and_its_words():
    from workbench.widgets.controls import duration
    from workbench.widgets.runs import time_left

    assert time_left(0.25, 10.0) == pytest.approx(30.0)  # a quarter in 10 s: 30 s to go at that pace
    assert time_left(0.01, 10.0) is None and time_left(0.5, 0.5) is None and time_left(1.0, 10.0) is None
    assert [duration(s) for s in (8.4, 130, 900, 3600, 3900)] == ["8 s", "2 min 10 s", "15 min", "1 h", "1 h 5 min"]


def test_a_run_shows_the_time_left_while_it_goes(board):
    state, controls = board.state, board.controls
    state.set_layer_sparsity("fc1", 0.5)
    state.set_training(epochs=3)
    state.record_every = 1
    seen = []
    state.observe(lambda change: seen.append((change["new"], controls.eta.value)), names=["eta"])
    assert state.fine_tune()
    assert state.wait(120)
    estimates = [value for value, _ in seen if value is not None]
    assert estimates and all(value >= 0 for value in estimates)
    assert any(label.startswith("about ") and label.endswith(" left") for _, label in seen if label)
    assert state.eta is None and controls.eta.value == ""  # finished: no time left shown


def test_loading_an_uncached_baseline_says_what_it_will_train_and_fills_the_bar(small_mnist, tmp_path,
                                                                               monkeypatch):
    from workbench import stages
    from workbench.config import TrainConfig
    from workbench.widgets.loading import SessionLoader

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    monkeypatch.setitem(stages.DEFAULT_TRAINING, "baseline", TrainConfig(epochs=2, batch_size=64, patience=2))
    state = SessionState()
    loader = SessionLoader(state, eval_size=100)
    loader.user_data = small_mnist.subset(train=640, test=200)
    statuses, progress = [], []
    state.observe(lambda change: statuses.append(change["new"]), names=["status"])
    state.observe(lambda change: progress.append(change["new"]), names=["progress"])
    assert loader.load_zoo("lenet5", "user", wait=True)
    plan = next(text for text in statuses if text.startswith("No trained lenet5"))
    n_train = len(loader.user_data.y_train)
    assert f"on {n_train:,} images" in plan and "up to 2 epochs of 10 batches" in plan
    assert any(0 < p < 1 for p in progress)  # the bar moved while it trained
    assert state.model is not None and any(text.startswith("lenet5 on") for text in statuses)
