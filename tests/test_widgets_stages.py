"""The Studio's widgets without a browser, running the pipeline's stages: fine-tuning in every pruning mode ends at
the masks the sliders and views show, the curves name their split, the runs table, the pickers, and progress with
the time left. (Views, callbacks, Stop and configuration: test_widgets.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.widgets import SessionState


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
