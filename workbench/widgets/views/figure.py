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
from plotly.serializers import custom_serializers
from traitlets import Dict

from workbench.widgets.assets import figure_esm

# What the page tells the kernel after each redraw (plotly's computed defaults and ranges). ipywidgets 8 sends every
# such message straight back to the page ("echo_update", for other pages showing the same widget), where plotly
# ignores it: three to six wasted messages per slider move, each decoded by the page between two redraws.
_NO_ECHO = dict(sync=True, echo_update=False, **custom_serializers)


_CHANNELS = frozenset({"_py2js_addTraces", "_py2js_restyle", "_py2js_relayout", "_py2js_update", "_py2js_animate",
                       "_py2js_deleteTraces", "_py2js_moveTraces", "_py2js_removeLayoutProps",
                       "_py2js_removeTraceProps", "_js2py_traceDeltas", "_js2py_layoutDelta"})


class SyncedFigureWidget(go.FigureWidget):
    _js2py_traceDeltas = Dict(allow_none=True).tag(**_NO_ECHO)
    _js2py_layoutDelta = Dict(allow_none=True).tag(**_NO_ECHO)
    _js2py_restyle = Dict(allow_none=True).tag(**_NO_ECHO)
    _js2py_relayout = Dict(allow_none=True).tag(**_NO_ECHO)
    _js2py_update = Dict(allow_none=True).tag(**_NO_ECHO)
    _js2py_pointsCallback = Dict(allow_none=True).tag(**_NO_ECHO)

    def _should_send_property(self, key, value):
        # plotly clears each message channel (``_py2js_update = msg`` then ``= None``; ``_js2py_* = None`` once
        # handled), and ipywidgets sends every clearing to the page, which ignores it. Each message carries an
        # edit id that grows, so the next one differs from the last without the clearing.
        if value is None and key in _CHANNELS:
            return False
        return super()._should_send_property(key, value)

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
