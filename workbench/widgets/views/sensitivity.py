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

    def axis_title(self) -> str:
        """The y axis names the split and the starting point the scan was measured on."""
        frame = self.state.sensitivity
        attrs = getattr(frame, "attrs", {}) if frame is not None else {}
        if not attrs:
            return "accuracy"
        where = f"; on {attrs['where']}" if attrs.get("where", "this kernel") != "this kernel" else ""
        return f"{attrs['split']} accuracy ({attrs['images']:,} images; from {attrs['start']}{where})"

    def draw(self):
        curves = self.data()
        self.figure.update_layout(yaxis_title=self.axis_title())
        names = [trace.name for trace in self.figure.data]
        if names != list(curves):
            self.figure.data = []
            for layer in curves:
                self.figure.add_scatter(name=layer, mode="lines+markers")
        for trace, (x, y) in zip(self.figure.data, curves.values()):
            trace.x, trace.y = x, y
        self.show_empty(None if curves else "No scan yet: 'Sensitivity scan' prunes each layer alone and draws "
                                            "its accuracy here.")
        self.figure.update_xaxes(range=None if curves else [0, 1], autorange=bool(curves))
        self.figure.update_yaxes(range=None if curves else [0, 1], autorange=bool(curves))
