"""Pareto scatter: every run of the session as size against accuracy change, with published anchors."""

from __future__ import annotations

from workbench.anchors import anchors_for
from workbench.widgets.views.base import View


class ParetoView(View):
    traits = ("runs", "model_name")
    title = "Runs: shipped size against accuracy change"
    needs_model = False

    def setup(self):
        self.figure.add_scatter(name="this session (gzip of int8 .tflite; Δ on validation)", mode="markers+text",
                                textposition="top center", marker=dict(size=11, color="#1f77b4"))
        self.figure.add_scatter(name="published and reference runs (Δ on their test sets)", mode="markers+text", textposition="bottom center",
                                marker=dict(size=9, symbol="diamond", color="#7f7f7f"), textfont=dict(size=9))
        self.figure.update_layout(xaxis=dict(title="bytes (log)", type="log"),
                                  yaxis=dict(title="int8 accuracy change vs baseline (points)"), legend=dict(orientation="h", y=-0.2))

    def data(self) -> dict:
        runs = self.state.runs
        anchors = anchors_for(self.state.model_name or "lenet5")
        return {"run_bytes": [r["gzip_bytes"] for r in runs], "run_delta": [r["delta_points"] for r in runs],
                "run_labels": [r["label"] for r in runs], "anchor_bytes": [a["bytes"] for a in anchors],
                "anchor_delta": [a["delta_points"] for a in anchors], "anchor_labels": [a["label"] for a in anchors]}

    def draw(self):
        d = self.data()
        runs, anchors = self.figure.data
        runs.x, runs.y, runs.text = d["run_bytes"], d["run_delta"], d["run_labels"]
        anchors.x, anchors.y, anchors.text = d["anchor_bytes"], d["anchor_delta"], d["anchor_labels"]
