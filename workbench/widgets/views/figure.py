"""SyncedFigureWidget: a plotly FigureWidget whose first message to the page carries its data.

plotly's FigureWidget opens its comm (sending its state to the page) inside the ipywidgets
constructor, and only afterwards sets ``_widget_data``/``_widget_layout``, which then travel as a
separate update. The page's view draws from the state it has when it renders and ignores later
changes of ``_widget_data`` (its ``do_data`` handler is empty), so a figure rendered between the
two messages stays empty or stale. Under CPU load that happened now and then in the Studio.

Here the comm opens only once the figure is complete, so its opening state has the full figure.
"""

from __future__ import annotations

import plotly.graph_objects as go


class SyncedFigureWidget(go.FigureWidget):
    def __init__(self, *args, **kwargs):
        self._opening_deferred = True
        super().__init__(*args, **kwargs)
        self._opening_deferred = False
        self.open()

    def open(self):
        if getattr(self, "_opening_deferred", False):
            return
        super().open()
