"""Dashboard: the controls and all views of one SessionState, composed (no tabs: voila#1533)."""

from __future__ import annotations

import ipywidgets as w

from workbench.widgets.controls import Controls
from workbench.widgets.state import SessionState
from workbench.widgets.views import (CurvesView, HistogramView, KernelHeatmapView, ModelOverviewView, ParetoView,
                                     SensitivityView)


class Dashboard:
    """Controls on the left, views on the right."""

    def __init__(self, state: SessionState):
        self.state = state
        self.controls = Controls(state)
        self.histogram = HistogramView(state)
        self.heatmap = KernelHeatmapView(state)
        self.overview = ModelOverviewView(state, height=260)
        self.curves = CurvesView(state)
        self.sensitivity = SensitivityView(state)
        self.pareto = ParetoView(state)

    @property
    def views(self):
        return [self.histogram, self.heatmap, self.overview, self.curves, self.sensitivity, self.pareto]

    @property
    def widget(self):
        right = w.VBox([self.controls.layer, *(v.widget for v in self.views)], layout=w.Layout(width="60%"))
        return w.HBox([w.Box([self.controls.widget], layout=w.Layout(width="40%")), right])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def dashboard(model, data, model_name: str = "") -> Dashboard:
    """A ready dashboard for a trained model and a Dataset."""
    return Dashboard(SessionState(model, data, model_name=model_name))
