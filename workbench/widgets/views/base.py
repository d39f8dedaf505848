"""Base class of the views: a plotly FigureWidget redrawn (in one batch_update) when state traits change."""

from __future__ import annotations

import copy

import plotly.graph_objects as go

from workbench.widgets.views.figure import SyncedFigureWidget


class View:
    """Observe ``traits`` of ``state`` and redraw ``figure`` once per change.

    Inside a container, each redraw shows a new SyncedFigureWidget built from the full data
    (``replace_on_redraw``): the page draws a plotly figure from the state it has when the view
    renders and ignores later data changes, so a figure whose opening message carries all of its
    data is the reliable way to show new data (see figure.py).

    Subclasses set ``traits``, build their empty figure in ``make_figure`` (or add traces in
    ``setup``) and fill it in ``draw``.
    """

    traits: tuple[str, ...] = ()
    title = ""
    replace_on_redraw = True
    _container = None

    def __init__(self, state, height: int = 320):
        self.state = state
        self.redraws = 0
        self.figure = SyncedFigureWidget(self.make_figure(height))
        self.setup()
        state.observe(self._on_change, names=list(self.traits))
        self.redraw()

    @property
    def css_class(self) -> str:
        """A stable hook for the page (browser tests, custom CSS): ``wb-view-curves`` for CurvesView."""
        name = type(self).__name__.removesuffix("View")
        return "wb-view-" + "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")

    def make_figure(self, height: int) -> go.Figure:
        """The empty figure (layout, subplots, traces) that ``draw`` fills."""
        return go.Figure(layout=go.Layout(title=self.title, height=height, margin=dict(l=50, r=20, t=40, b=40)))

    @property
    def widget(self):
        sync_figure(self.figure)
        if self.replace_on_redraw:
            if self._container is None:
                import ipywidgets

                self._replace_figure()
                self._container = ipywidgets.Box([self.figure])
                self._container.add_class(self.css_class)
            return self._container
        return self.figure

    def setup(self) -> None:
        """Create the traces (called once)."""

    def draw(self) -> None:
        """Update trace data from the state (called inside batch_update)."""
        raise NotImplementedError

    def _on_change(self, change=None) -> None:
        self.redraw()

    def redraw(self) -> None:
        if self.state.model is None and self.needs_model:
            return
        with self.figure.batch_update():
            self.draw()
        if self.replace_on_redraw and self._container is not None:
            self._replace_figure()
        self.redraws += 1

    def _replace_figure(self) -> None:
        old, self.figure = self.figure, SyncedFigureWidget(self.figure)
        if self._container is not None:
            self._container.children = (self.figure,)
        old.close()

    needs_model = True


def sync_figure(figure) -> None:
    """Copy a FigureWidget's current data and layout into its synced state.

    plotly sends updates as one-off messages and syncs the full state only when the figure itself
    is displayed; inside a VBox, a view rendered later (a Voila page, a re-opened notebook) would
    otherwise show the figure as it was when it was created.
    """
    figure._widget_layout = copy.deepcopy(figure._layout_obj._props)
    figure._widget_data = copy.deepcopy(figure._data)
