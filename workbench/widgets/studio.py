"""Compression Studio: the main app. Pick or upload a model and data, prune, train, quantize, export."""

from __future__ import annotations

import html

import ipywidgets as w

from workbench.data.loaders import DATASETS
from workbench.models.zoo import MODELS
from workbench.runs_table import runs_frame
from workbench.widgets.dashboard import Dashboard
from workbench.widgets.loading import SessionLoader
from workbench.widgets.search_panel import SearchPanel
from workbench.widgets.state import SessionState

STYLE = {"description_width": "60px"}


class Studio:
    """The app: a SessionState, its loader and dashboard, model/data pickers, uploads and a runs table."""

    def __init__(self, model: str = "lenet5", dataset: str = "mnist", eval_size: int = 500, load: bool = True):
        self.state = SessionState()
        self.loader = SessionLoader(self.state, eval_size)
        self.model_picker = w.Dropdown(options=list(MODELS), value=model, description="model", style=STYLE)
        self.data_picker = w.Dropdown(options=[*DATASETS, "user"], value=dataset, description="data", style=STYLE)
        self.load_button = w.Button(description="Load", button_style="primary",
                                    tooltip="load a trained baseline (trains and caches it the first time)")
        self.upload = w.FileUpload(accept=".keras,.npz", multiple=True, description="Upload .keras / .npz")
        self.runs_table = w.HTML()
        self.header = w.HTML()
        self.load_button.on_click(lambda _: self.load_picked())
        self.upload.observe(self._on_upload, names="value")
        self.state.observe(lambda c: self._show_runs(), names=["runs"])
        self.state.observe(lambda c: self._show_header(), names=["model_name", "data_source", "busy"])
        self.state.observe(lambda c: self._follow_session(), names=["model_name", "dataset_name"])
        self.state.observe(lambda c: None if c["new"] else self._follow_session(), names=["busy"])
        if load:
            self.loader.load_now(model, dataset)
        self.dashboard = Dashboard(self.state)
        self.search = SearchPanel(self.state)
        self._show_header()

    def load_picked(self) -> bool:
        """Load the picked zoo model on the picked data (an uploaded model is the session already)."""
        if self.model_picker.value not in MODELS:
            return self.state._refuse(f"{self.model_picker.value!r} is the uploaded model and already open; pick a "
                                      f"zoo model ({', '.join(MODELS)}) to load one.")
        return self.loader.load_zoo(self.model_picker.value, self.data_picker.value)

    def _follow_session(self):
        """The pickers show what the session holds: after an upload, and after a load that was stopped."""
        s = self.state
        if s.model_name:
            options = list(MODELS) + ([s.model_name] if s.model_name not in MODELS else [])
            if list(self.model_picker.options) != options:
                self.model_picker.options = options
            self.model_picker.value = s.model_name
        if s.dataset_name:
            self.data_picker.value = s.dataset_name if s.dataset_name in DATASETS else "user"

    def _on_upload(self, change):
        if change["new"]:
            self.loader.upload(change["new"])
            self.upload.value = ()

    def _show_header(self):
        s = self.state
        for control in (self.model_picker, self.data_picker, self.load_button, self.upload):
            control.disabled = s.busy
        self.header.value = (f"<b>{html.escape(s.model_name or 'no model')}</b> · data: "
                             f"{html.escape(s.data_source or '-')}")

    HEADERS = {"label": "run", "model": "model", "dataset": "data", "qat": "QAT", "split": "measured on",
               "sparsity": "sparsity", "int8_accuracy": "int8 accuracy", "delta_points": "Δ vs baseline (points)",
               "fp32_bytes": "fp32 bytes", "tflite_bytes": ".tflite bytes", "gzip_bytes": "gzip -9 bytes",
               "entropy_bytes": "entropy-coded bytes", "compression_ratio": "ratio", "export_target": "export for",
               "latency_ms": "int8 latency, batch 1 (p50)", "speedup": "int8 speed-up over fp32",
               "micro_arena_bytes": "TFLite Micro arena"}

    def runs_html(self) -> str:
        """The session's runs with human headers and thousands separators ('' when there is none)."""
        frame = runs_frame(self.state.runs)
        if frame.empty:
            return ""
        formats = {"int8_accuracy": "{:.2%}".format, "delta_points": "{:+.2f}".format, "sparsity": "{:.1%}".format,
                   "compression_ratio": "{:.1f}×".format, "qat": lambda v: "yes" if v else "no (post-training)",
                   "micro_arena_bytes": lambda v: v if isinstance(v, str) else f"{v:,.0f} B",
                   "latency_ms": "{:.3g} ms".format, "speedup": "{:.2f}×".format,
                   **{k: "{:,.0f}".format for k in ("fp32_bytes", "tflite_bytes", "gzip_bytes", "entropy_bytes")}}
        for key, fmt in formats.items():
            frame[key] = frame[key].map(lambda v, f=fmt: "" if v is None or v != v else f(v))  # v != v: NaN
        return "<h4>Runs of this session</h4>" + frame.rename(columns=self.HEADERS).to_html(
            index=False, classes="runs", border=0, escape=True)

    def _show_runs(self):
        self.runs_table.value = self.runs_html()

    @property
    def widget(self):
        top = w.HBox([self.model_picker, self.data_picker, self.load_button, self.upload])
        return w.VBox([w.HTML("<h2>CNN Compression Studio</h2>"), top, self.header, self.dashboard.widget,
                       self.runs_table, self.search.widget])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def studio(model: str = "lenet5", dataset: str = "mnist", **kwargs) -> Studio:
    """The Compression Studio app, opened on a trained baseline."""
    return Studio(model, dataset, **kwargs)
