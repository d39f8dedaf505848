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
        assert len(esm) < 2000 < assets.bundle_source().stat().st_size
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
