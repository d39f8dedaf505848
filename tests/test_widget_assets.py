"""plotly's widget bundle is served once per page; each figure carries only a small loader."""

from __future__ import annotations

import os

import plotly.graph_objects as go
import pytest

from workbench.widgets import assets
from workbench.widgets.views.figure import SyncedFigureWidget


def test_install_copies_the_bundle_once(tmp_path):
    target = assets.install(tmp_path)
    assert target == tmp_path / "share/jupyter/labextensions" / assets.FOLDER / "static" / assets.bundle_name()
    assert target.read_bytes() == assets.bundle_source().read_bytes()
    os.utime(target, (1, 1))
    assert assets.install(tmp_path) == target and target.stat().st_mtime == 1  # not rewritten
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")], "no temporary files left"


def test_install_reports_an_unwritable_place(tmp_path):
    (tmp_path / "share").write_text("a file where a folder should be")
    assert assets.install(tmp_path) is None


def test_figures_carry_the_loader_not_the_bundle(monkeypatch):
    monkeypatch.delenv("WORKBENCH_PLOTLY_INLINE", raising=False)
    monkeypatch.delenv("VSCODE_PID", raising=False)
    assets.figure_esm.cache_clear()
    try:
        figure = SyncedFigureWidget(go.Figure(go.Scatter(y=[1, 2, 3])))
        esm = figure.get_state("_esm")["_esm"]
        assert len(esm) < 4000 < assets.bundle_source().stat().st_size
        assert f"{assets.FOLDER}/static/{assets.bundle_name()}" in esm and "fullLabextensionsUrl" in esm
        assert (assets.served_dir() / assets.bundle_name()).is_file()
    finally:
        assets.figure_esm.cache_clear()


@pytest.mark.parametrize("env", [{"WORKBENCH_PLOTLY_INLINE": "1"}, {"VSCODE_PID": "123"}])
def test_other_front_ends_keep_plotly_inline(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assets.figure_esm.cache_clear()
    try:
        assert assets.figure_esm() is None
        figure = SyncedFigureWidget(go.Figure())
        assert len(figure.get_state("_esm")["_esm"]) == len(assets.bundle_source().read_text())
    finally:
        assets.figure_esm.cache_clear()


def test_figures_send_the_page_only_what_it_uses():
    """One message per redraw: no echo of what the page reported, no clearing of plotly's message channels."""
    figure = SyncedFigureWidget(go.Figure(go.Bar(x=[1, 2], y=[3, 4])))
    sent = []
    figure._send = lambda msg, buffers=None: sent.append(msg["state"])
    figure.set_state({"_js2py_traceDeltas": {"trace_deltas": [], "trace_edit_id": figure._last_trace_edit_id}})
    figure.set_state({"_js2py_layoutDelta": {"layout_delta": {}, "layout_edit_id": figure._last_layout_edit_id}})
    assert sent == [] and figure._js2py_traceDeltas is None and figure._js2py_layoutDelta is None  # nothing back
    with figure.batch_update():
        figure.data[0].y = [5, 6]
        figure.layout.title = "new"
    updates = [state["_py2js_update"] for state in sent if "_py2js_update" in state]
    assert len(updates) == 1 and updates[0]["style_data"]["y"] == [[5, 6]]  # the redraw itself, once
    assert updates[0]["layout_data"]["title"] == {"text": "new"} and all(None not in state.values() for state in sent)
    sent.clear()
    figure.set_state({"_js2py_pointsCallback": {"event_type": "plotly_click", "points": {"trace_indexes": [0],
                      "point_indexes": [1], "xs": [2], "ys": [6]}, "device_state": {}, "selector": None}})
    assert not any("_js2py_pointsCallback" in state and state["_js2py_pointsCallback"] for state in sent)  # no echo
