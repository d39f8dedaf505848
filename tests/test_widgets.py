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
from workbench.widgets import SessionState


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
