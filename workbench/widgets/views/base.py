"""Base class of the views: a plotly figure redrawn (in one batch_update) when state traits change."""

from __future__ import annotations

import plotly.graph_objects as go

from workbench.widgets.views.figure import SyncedFigureWidget


class View:
    """Observe ``traits`` of ``state`` and redraw once per change.

    Views draw into a plain plotly Figure (``drawing``), which sends nothing to the page. Once the
    view is displayed (``widget``), a SyncedFigureWidget opened from the finished drawing shows it
    (its opening message carries all of its data, see figure.py). Later redraws reach that figure as
    plotly deltas (one ``_py2js_update`` message with only the values that changed, which plotly's
    front end applies with Plotly.update, and keeps for views rendered later); only a redraw that
    changes the traces themselves opens a new figure. ``figure`` is the displayed widget, or the
    drawing while nothing is displayed.

    Subclasses set ``traits``, build their empty figure in ``make_figure`` (or add traces in
    ``setup``) and fill it in ``draw``; both work on ``self.figure``.
    """

    traits: tuple[str, ...] = ()
    title = ""
    _container = None

    def __init__(self, state, height: int = 320):
        self.state = state
        self.redraws = 0
        self.drawing = self.figure = self.make_figure(height)
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
        if self._container is None:
            import ipywidgets

            self._container = ipywidgets.Box()
            self._container.add_class(self.css_class)
            self._show()
        return self._container

    def setup(self) -> None:
        """Create the traces (called once)."""

    def draw(self) -> None:
        """Update trace data from the state (called inside batch_update)."""
        raise NotImplementedError

    EMPTY = "wb-empty"  # the name of the empty-state note among the figure's annotations

    def show_empty(self, message: str | None) -> None:
        """Say in words why the figure has nothing to show (instead of bare axes), or remove the note."""
        kept = [a for a in self.figure.layout.annotations if a.name != self.EMPTY]
        if message:
            kept.append(go.layout.Annotation(name=self.EMPTY, text=message, showarrow=False, xref="paper",
                                             yref="paper", x=0.5, y=0.5, font=dict(size=13, color="#666")))
        self.figure.layout.annotations = kept

    def empty_message(self) -> str | None:
        """The empty-state note shown, if any."""
        return next((a.text for a in self.figure.layout.annotations if a.name == self.EMPTY), None)

    def _on_change(self, change=None) -> None:
        self.redraw()

    def redraw(self) -> None:
        if self.needs_model and self.state.model is None:
            return
        shown, self.figure = self.figure, self.drawing
        try:
            with self.figure.batch_update():
                self.draw()
        finally:
            self.figure = shown
        if self._container is not None and not self._update_in_place():
            self._show()
        self.redraws += 1

    _shown_keys = None  # ([keys of each trace], keys of the layout) of what the page's figure was last sent

    @staticmethod
    def _keys_of(traces: list[dict], layout: dict):
        return [set(trace) for trace in traces], set(layout)

    def _update_in_place(self) -> bool:
        """Send the drawing to the figure on the page as plotly deltas (one update message with only what
        changed) when it has the same traces; False when its traces changed and a new figure is needed."""
        shown, drawing = self.figure, self.drawing
        if shown is drawing or [t.type for t in shown.data] != [t.type for t in drawing.data]:
            return False
        traces, layout = [t.to_plotly_json() for t in drawing.data], drawing.layout.to_plotly_json()
        trace_keys, layout_keys = self._shown_keys
        with shown.batch_update():
            for old, before, after in zip(shown.data, trace_keys, traces):
                for key in (before | set(after)) - {"type", "uid"}:  # uid: the page's name for the trace
                    old[key] = after.get(key)  # plotly sends it only if the value differs
            for key in (layout_keys | set(layout)) - {"template"}:
                shown.layout[key] = layout.get(key)
        self._shown_keys = self._keys_of(traces, layout)
        return True

    def _show(self) -> None:
        """Display a new figure widget opened from the drawing (and close the one it replaces)."""
        old, self.figure = self.figure, SyncedFigureWidget(self.drawing)
        self._shown_keys = self._keys_of([t.to_plotly_json() for t in self.drawing.data],
                                         self.drawing.layout.to_plotly_json())
        self._container.children = (self.figure,)
        if old is not self.drawing:
            old.close()

    needs_model = True
