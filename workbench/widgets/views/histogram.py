"""Weight histogram of the selected layer: kept and pruned mass apart, threshold and quantization levels."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.metrics.weights import quant_levels, weight_histogram
from workbench.widgets.views.base import View


class HistogramView(View):
    traits = ("masks_version", "selected_layer", "weight_bits")
    title = "Weights of the selected layer"
    bins = 80

    def setup(self):
        self.figure.add_bar(name="kept", marker_color="#1f77b4")
        self.figure.add_bar(name="pruned", marker_color="#d62728", opacity=0.7)
        self.figure.add_scatter(name="quantization levels", mode="markers", marker=dict(symbol="line-ns-open",
                                size=10, color="#2ca02c"), hoverinfo="x")
        self.figure.update_layout(barmode="stack", bargap=0, xaxis_title="weight", yaxis_title="count",
                                  legend=dict(orientation="h", y=1.12))

    def data(self) -> dict:
        layer = self.state.layer()
        kernel = layer.kernel.numpy()
        hist = weight_histogram(kernel, layer.get_mask(), self.bins)
        bits = int(self.state.weight_bits.get(layer.name, 8))
        hist["levels"] = quant_levels(kernel * layer.get_mask(), bits, layer.kind) if bits < 8 else np.zeros(0)
        hist["threshold"] = float(self.state.layer_threshold.get(layer.name, 0.0))
        hist["bits"] = bits
        return hist

    def draw(self):
        h = self.data()
        width = float(h["edges"][1] - h["edges"][0])
        kept, pruned, levels = self.figure.data
        kept.x, kept.y, kept.width = h["centers"], h["kept"], width
        pruned.x, pruned.y, pruned.width = h["centers"], h["pruned"], width
        levels.x, levels.y = h["levels"], np.zeros(len(h["levels"]))
        levels.name = f"{h['bits']}-bit levels"
        t = h["threshold"] if self.state.criterion == "magnitude" else 0.0
        self.figure.layout.shapes = [go.layout.Shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper",
                                                     line=dict(color="black", dash="dash")) for x in (-t, t) if t]
        self.figure.layout.title.text = (f"{self.state.selected_layer}: {int(h['pruned'].sum()):,} of "
                                         f"{int(h['pruned'].sum() + h['kept'].sum()):,} weights pruned")
