"""Weight histogram of the selected layer: kept and pruned mass apart, threshold and quantization levels."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.metrics.weights import quant_levels, score_histogram, weight_histogram
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
        """Magnitude: the weights, with the cut at ±threshold. Taylor: log10 of the scores, with the cut at
        log10(threshold): each criterion's own cut, and the red bars are exactly the mask's zeros."""
        layer = self.state.layer()
        mask = layer.get_mask()
        bits = int(self.state.weight_bits.get(layer.name, 8))
        threshold = float(self.state.layer_threshold.get(layer.name, 0.0))
        if self.state.criterion == "taylor":
            hist = score_histogram(self.state.scores(layer.name), mask, self.bins)
            hist.update(levels=np.zeros(0), cuts=[np.log10(threshold)] if threshold > 0 else [], axis="log10 score",
                        what=f"Taylor scores |w·dL/dw|, log10 (score 0 at {hist['zero_center']:.1f})")
        else:
            kernel = layer.kernel.numpy()
            hist = weight_histogram(kernel, mask, self.bins)
            hist.update(levels=quant_levels(kernel * mask, bits, layer.kind) if bits < 8 else np.zeros(0),
                        cuts=[-threshold, threshold] if threshold > 0 else [], axis="weight", what="weights")
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
        self.figure.layout.shapes = [go.layout.Shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper",
                                                     line=dict(color="black", dash="dash")) for x in h["cuts"]]
        self.figure.layout.xaxis.title.text = h["axis"]
        self.figure.layout.title.text = (f"{self.state.selected_layer} {h['what']}: {int(h['pruned'].sum()):,} of "
                                         f"{int(h['pruned'].sum() + h['kept'].sum()):,} weights pruned")
