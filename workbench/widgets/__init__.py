"""Widget library: a traitlets SessionState, ipywidgets controls and plotly FigureWidget views.

Only this package imports ipywidgets and plotly; everything it computes comes from the core.
"""

from workbench.widgets._fast_imports import import_jsonschema_lazily

import_jsonschema_lazily()  # before plotly: saves about 3.5 s of every kernel's start (see _fast_imports.py)


from workbench.widgets.controls import Controls
from workbench.widgets.dashboard import Dashboard, dashboard
from workbench.widgets.state import SessionState
from workbench.widgets.views import (CurvesView, HistogramView, KernelHeatmapView, ModelOverviewView, ParetoView,
                                     SensitivityView)

__all__ = ["Controls", "CurvesView", "Dashboard", "HistogramView", "KernelHeatmapView", "ModelOverviewView",
           "ParetoView", "SensitivityView", "SessionState", "dashboard"]
