"""FigureWidget views that observe a SessionState."""

from workbench.widgets.views.curves import CurvesView
from workbench.widgets.views.heatmap import KernelHeatmapView, ModelOverviewView
from workbench.widgets.views.histogram import HistogramView
from workbench.widgets.views.pareto import ParetoView
from workbench.widgets.views.sensitivity import SensitivityView

__all__ = ["CurvesView", "HistogramView", "KernelHeatmapView", "ModelOverviewView", "ParetoView", "SensitivityView"]
