"""Base class of the views: a plotly FigureWidget redrawn (in one batch_update) when state traits change."""

from __future__ import annotations

import copy

import plotly.graph_objects as go


class View:
    """Observe ``traits`` of ``state`` and redraw ``figure`` once per change.

    Inside a container, each redraw shows a new FigureWidget built from the full data
    (``replace_on_redraw``): incremental plotly updates were seen to be dropped by the page under
    load (Voila, plotly 7), while a figure's first render from its full state is reliable.
    """

    traits: tuple[str, ...] = ()
    title = ""
    replace_on_redraw = True
    _container = None

    def __init__(self, state, height: int = 320):
        self.state = state
        self.redraws = 0
        self.figure = go.FigureWidget(layout=go.Layout(title=self.title, height=height,
                                                       margin=dict(l=50, r=20, t=40, b=40)))
        self.setup()
        state.observe(self._on_change, names=list(self.traits))
        self.redraw()

    @property
    def widget(self):
        sync_figure(self.figure)
        if self.replace_on_redraw:
            if self._container is None:
                import ipywidgets

                self._container = ipywidgets.Box([self.figure])
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
            old, self.figure = self.figure, go.FigureWidget(self.figure)
            self._container.children = (self.figure,)
            old.close()
        self.redraws += 1

    needs_model = True


def sync_figure(figure) -> None:
    """Copy a FigureWidget's current data and layout into its synced state.

    plotly sends updates as one-off messages and syncs the full state only when the figure itself
    is displayed; inside a VBox, a view rendered later (a Voila page, a re-opened notebook) would
    otherwise show the figure as it was when it was created.
    """
    figure._widget_layout = copy.deepcopy(figure._layout_obj._props)
    figure._widget_data = copy.deepcopy(figure._data)
