"""Sensitivity curves: accuracy against sparsity for each layer (from workbench.sensitivity_scan)."""

from __future__ import annotations

from workbench.widgets.views.base import View


class SensitivityView(View):
    traits = ("sensitivity",)
    title = "Sensitivity: each layer pruned alone"
    needs_model = False

    def setup(self):
        self.figure.update_layout(xaxis=dict(title="sparsity", tickformat=".0%"),
                                  yaxis=dict(title="accuracy", tickformat=".0%"))

    def data(self) -> dict:
        frame = self.state.sensitivity
        if frame is None or len(frame) == 0:
            return {}
        return {layer: (group.sparsity.tolist(), group.accuracy.tolist()) for layer, group in frame.groupby("layer", sort=False)}

    def draw(self):
        curves = self.data()
        names = [trace.name for trace in self.figure.data]
        if names != list(curves):
            self.figure.data = []
            for layer in curves:
                self.figure.add_scatter(name=layer, mode="lines+markers")
        for trace, (x, y) in zip(self.figure.data, curves.values()):
            trace.x, trace.y = x, y
