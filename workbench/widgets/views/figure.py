"""SyncedFigureWidget: a plotly FigureWidget whose first message to the page carries its data.

plotly's FigureWidget opens its comm (sending its state to the page) inside the ipywidgets
constructor, and only afterwards sets ``_widget_data``/``_widget_layout``, which then travel as a
separate update. The page's view draws from the state it has when it renders and ignores later
changes of ``_widget_data`` (its ``do_data`` handler is empty), so a figure rendered between the
two messages stays empty or stale. Under CPU load that happened now and then in the Studio.

Here the comm opens only once the figure is complete, so its opening state has the full figure.
The figure's JavaScript is a small loader of plotly's bundle, served once per page (assets.py).
"""

from __future__ import annotations

import plotly.graph_objects as go

from workbench.widgets.assets import figure_esm


class SyncedFigureWidget(go.FigureWidget):
    def __init__(self, *args, **kwargs):
        self._opening_deferred = True
        esm = figure_esm()
        if esm is not None:
            self._esm = esm  # read by AnyWidget.__init__ to create the synced _esm trait
        super().__init__(*args, **kwargs)
        self._opening_deferred = False
        self.open()

    def open(self):
        if getattr(self, "_opening_deferred", False):
            return
        super().open()
