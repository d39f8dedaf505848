"""Sparsity heatmaps: one layer's kernel (pruned cells blank) with per-filter sparsity, and a model overview."""

from __future__ import annotations

import numpy as np
from plotly.subplots import make_subplots
import plotly.graph_objects as go

from workbench.metrics.weights import kernel_map
from workbench.pruning.masks import sparsity_of
from workbench.widgets.views.base import View
from workbench.widgets.views.png import png_data_uri


class KernelHeatmapView(View):
    """The selected layer's |w| as an image (a PNG, see png.py: a fraction of a Heatmap's JSON), pruned cells
    blank, beside each output channel's sparsity."""

    traits = ("masks_version", "selected_layer")
    title = "Kernel map"
    max_rows, max_columns = 128, 400  # larger kernels show their top-left corner (drawing stays fast)

    def __init__(self, state, height: int = 360):
        super().__init__(state, height)

    def make_figure(self, height: int) -> go.Figure:
        fig = make_subplots(rows=1, cols=2, column_widths=[0.8, 0.2], shared_yaxes=True, horizontal_spacing=0.03,
                            subplot_titles=("|w| (blank = pruned)", "filter sparsity"))
        fig.add_trace(go.Image(x0=0, dx=1, y0=0, dy=1, hovertemplate="input x position %{x}, output channel "
                                                                      "%{y}<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Bar(orientation="h", marker_color="#d62728"), row=1, col=2)
        fig.update_layout(height=height, margin=dict(l=50, r=20, t=40, b=40), showlegend=False,
                          plot_bgcolor="#f4f4f4")
        fig.update_xaxes(range=[0, 1], row=1, col=2)
        fig.update_yaxes(scaleanchor=False, autorange="reversed")  # cells stretch to the plot; channel 0 on top
        return fig

    def data(self) -> dict:
        layer = self.state.layer()
        result = kernel_map(layer.kernel.numpy(), layer.get_mask())
        result["shape"] = result["z"].shape
        result["z"] = result["z"][:self.max_rows, :self.max_columns]
        return result

    def draw(self):
        d = self.data()
        heat, bars = self.figure.data
        heat.source = png_data_uri(d["z"])
        rows = min(len(d["filter_sparsity"]), self.max_rows)
        bars.x, bars.y = d["filter_sparsity"][:rows], np.arange(rows)
        shown = d["z"].shape
        crop = "" if shown == d["shape"] else f" (showing {shown[0]}x{shown[1]} of {d['shape'][0]}x{d['shape'][1]})"
        self.figure.layout.title = f"{self.state.selected_layer}: kernel map{crop}"
        self.figure.layout.yaxis.title = "output channel"
        self.figure.layout.xaxis.title = "input x kernel position"


class ModelOverviewView(View):
    traits = ("masks_version", "weight_bits")
    title = "Model overview"

    def setup(self):
        self.figure.add_bar(orientation="h", name="sparsity", marker_color="#d62728",
                            hovertemplate="%{y}: %{x:.1%} pruned<br>%{text}<extra></extra>")
        self.figure.update_layout(xaxis=dict(range=[0, 1], title="sparsity", tickformat=".0%"),
                                  yaxis=dict(autorange="reversed"))

    def data(self) -> dict:
        rows = []
        for name in self.state.layers:
            mask = self.state.layer(name).get_mask()
            rows.append({"layer": name, "params": int(mask.size), "sparsity": sparsity_of(mask),
                         "bits": int(self.state.weight_bits.get(name, 8))})
        return {"rows": rows}

    def draw(self):
        rows = self.data()["rows"]
        bar = self.figure.data[0]
        bar.y = [r["layer"] for r in rows]
        bar.x = [r["sparsity"] for r in rows]
        bar.text = [f"{r['params']:,} params, {r['bits']}-bit" for r in rows]
        bar.textposition = "outside"
        bar.texttemplate = "%{text}"
