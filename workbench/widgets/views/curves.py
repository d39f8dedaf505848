"""Live curves while fine-tuning or QAT runs: accuracy (train, validation) and estimated size in bytes."""

from __future__ import annotations

import math
import time

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.widgets.views.base import View

SIZE_KEYS = (("est_fp32_bytes", "fp32"), ("est_int8_bytes", "int8 .tflite (est.)"), ("est_gzip_bytes", "gzip (est.)"))


class CurvesView(View):
    traits = ("records",)
    needs_model = False
    min_interval_s = 0.5  # while a run goes, redraw at most this often (and once more when it ends)

    def __init__(self, state, height: int = 340):
        self._last = 0.0
        super().__init__(state, height)
        state.observe(lambda change: change["new"] or self.redraw(), names=["busy"])

    def make_figure(self, height: int) -> go.Figure:
        fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "size (bytes)"), horizontal_spacing=0.12)
        fig.add_trace(go.Scatter(name=self.split_label("train"), mode="lines+markers"), row=1, col=1)
        fig.add_trace(go.Scatter(name=self.split_label("validation"), mode="lines+markers"), row=1, col=1)
        for _, label in SIZE_KEYS:
            fig.add_trace(go.Scatter(name=label, mode="lines+markers"), row=1, col=2)
        fig.update_yaxes(type="log", row=1, col=2)
        fig.update_xaxes(title_text="step", row=1, col=1)
        fig.update_xaxes(title_text="step", row=1, col=2)
        fig.update_layout(height=height, margin=dict(l=50, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.25))
        return fig

    def split_label(self, split: str) -> str:
        """A curve's legend names the split it was measured on, and how many images that is."""
        data = self.state.data
        if data is None:
            return f"{split} accuracy"
        if split == "train":
            return f"train accuracy (running, {len(data.y_train):,} train images)"
        return f"validation accuracy ({len(data.y_val):,} validation images, per epoch)"

    def _on_change(self, change=None):
        now = time.monotonic()
        if self.state.busy and now - self._last < self.min_interval_s and self.state.records:
            return
        self._last = now
        self.redraw()

    def data(self) -> dict:
        records = self.state.records
        batch = [r for r in records if r.get("kind") == "batch"]
        epoch = [r for r in records if r.get("kind") == "epoch" and not math.isnan(r.get("val_accuracy", math.nan))]
        out = {"train_step": [r["step"] for r in batch], "train_accuracy": [r["accuracy"] for r in batch],
               "val_step": [r["step"] for r in epoch], "val_accuracy": [r["val_accuracy"] for r in epoch],
               "size_step": [r["step"] for r in records]}
        for key, _ in SIZE_KEYS:
            out[key] = [r.get(key) for r in records]
        return out

    def draw(self):
        d = self.data()
        train, val, *sizes = self.figure.data
        train.x, train.y, train.name = d["train_step"], d["train_accuracy"], self.split_label("train")
        val.x, val.y, val.name = d["val_step"], d["val_accuracy"], self.split_label("validation")
        for trace, (key, _) in zip(sizes, SIZE_KEYS):
            trace.x, trace.y = d["size_step"], d[key]
        self.show_empty(None if d["size_step"] else "No training yet: Fine-tune or Quantize (QAT) draws accuracy "
                                                   "and estimated size here, live.")
