"""The Studio's Search panel: run ``workbench.search`` on the session's baseline and data, watch the Pareto
front grow, and click a trial to load its settings into the sliders and its int8 model as the export.

State (``SearchState``: the trials so far, the pick, the budget) is apart from the view
(``SearchView``: one plotly FigureWidget). The search itself is ``workbench.search.search``, run
off the main thread by the session's job runner; Stop ends it cleanly and keeps what finished.
"""

from __future__ import annotations

import html
import math
import os
import time

import ipywidgets as w
import numpy as np
import traitlets as t

from workbench.search.report import pareto_front, pick_trial
from workbench.search.space import SearchSpace
from workbench.widgets.dispatch import post
from workbench.widgets.views.base import View

STYLE = {"description_width": "130px"}


class SearchState(t.HasTraits):
    """What the panel shows: the trials table so far, the pick, and the search's settings."""

    trials = t.Any(None)  # pandas DataFrame from workbench.search.report.trials_frame
    pick = t.Any(None)  # trial number or None
    max_loss = t.Float(1.0)
    baseline_validation = t.Float(math.nan)
    dashboard = t.Unicode("")
    running = t.Bool(False)
    done = t.Int(0)
    planned = t.Int(0)
    started = t.Float(0.0)
    message = t.Unicode("")

    def __init__(self, session, **kwargs):
        super().__init__(**kwargs)
        self.session = session
        self.artifacts: dict[int, bytes] = {}
        self.weights: dict[int, dict] = {}  # fine-tuned weights by layer, of the trials on the Pareto front only
        self.sizes: dict[int, dict] = {}
        self.params: dict[int, dict] = {}
        self.space = SearchSpace()

    # -- the search ------------------------------------------------------------------------------------------
    def start(self, trials: int = 10, max_loss: float = 1.0, workers: int | None = None, max_epochs: int = 4,
              minutes: float | None = None) -> bool:
        """Start a search from the session's trained baseline on its data (validation split only)."""
        from workbench.search import search

        s = self.session
        if s.model is None:
            return s._refuse("No model loaded yet: load a model and dataset first.")
        try:
            space = SearchSpace(finetune_epochs=(1, max(1, int(max_epochs))), qat_epochs=1)
        except Exception as exc:  # noqa: BLE001 (a ConfigError from the inputs)
            return s._refuse(str(exc))
        self.space = space
        self.trials, self.pick, self.artifacts, self.params, self.weights = None, None, {}, {}, {}
        self.max_loss, self.done, self.planned, self.started = float(max_loss), 0, int(trials), time.time()
        self.baseline_validation = s.run.validation.get("baseline", math.nan)
        self.dashboard, self.message = "", "starting the search…"

        def work(stop):
            post(setattr, self, "running", True)
            try:
                report = search(s.baseline, s.data, max_loss=max_loss, trials=int(trials), minutes=minutes,
                                workers=workers, space=space, final_seeds=(), warm_start=True, stop=stop,
                                keep_weights=True,
                                on_trial=lambda n, rec, frame: post(self._add_trial, n, rec, frame),
                                on_status=lambda text: post(setattr, self, "message", text),
                                on_start=lambda info: post(self._started, info))
                post(self._finished, report)
            finally:
                post(setattr, self, "running", False)

        return s.start_job("search", work, restore=lambda: None)

    def stop(self) -> bool:
        return self.session.stop()

    def _started(self, info: dict) -> None:
        self.dashboard = info.get("dashboard") or ""
        self.baseline_validation = float(info["baseline_validation"])

    def _add_trial(self, number: int, record: dict, frame) -> None:
        if record.get("tflite"):
            self.artifacts[number] = record["tflite"]
            self.sizes[number] = dict(record.get("sizes") or {})
        self.params = {int(r["trial"]): {k[6:]: v for k, v in r.items() if k.startswith("param:")}
                       for r in frame.to_dict(orient="records")}
        front = pareto_front(frame)
        if record.get("weights"):
            self.weights[number] = record["weights"]
        on_front = set(map(int, front["trial"]))
        self.weights = {n: w for n, w in self.weights.items() if n in on_front}  # memory: the front's only
        self.done += 1
        self.trials = frame
        self.pick = pick_trial(front)
        self.message = f"trial {number}: {record['state']}"

    def _finished(self, report) -> None:
        self.trials = report.trials
        self.pick = report.pick["trial"] if report.pick else None
        stopped = " (stopped)" if report.stopped else ""
        self.message = "search finished" + stopped + ": " + report.summary()

    def eta_text(self) -> str:
        """Trials done of planned, and the time left at the pace so far."""
        if not self.planned:
            return ""
        text = f"{self.done} of {self.planned} trials"
        if self.running and self.done:
            per = (time.time() - self.started) / self.done
            text += f", about {max(0, self.planned - self.done) * per / 60:.1f} min left"
        return text

    # -- a trial into the session ---------------------------------------------------------------------------
    def apply_trial(self, number: int) -> bool:
        """Load a finished trial's settings into the sliders, and its int8 .tflite as the session's export."""
        s = self.session
        params = self.params.get(int(number))
        if params is None:
            return s._refuse(f"No finished trial {number} in this search.")
        configs = self.space.configs(params)
        config = {"mode": "sparsity", "layer_sparsity": dict(configs["prune"].layer_sparsity),
                  "weight_bits": dict(configs["quant"].layer_weight_bits),
                  "activation_bits": configs["quant"].activation_bits, "schedule": "polynomial",
                  "epochs": configs["finetune"].epochs, "learning_rate": configs["finetune"].learning_rate}
        if not s.load_config(config):
            return False
        weights = self.weights.get(int(number))
        if weights is not None and not s.load_weights(weights, f"search trial {number}: its fine-tuned model"):
            return False
        tflite = self.artifacts.get(int(number))
        if tflite is not None:
            row = self.trials[self.trials["trial"] == int(number)].iloc[0]
            s.export = {**self.sizes.get(int(number), {}), "tflite": tflite, "label": f"search trial {number}",
                        "gzip_bytes": int(row["gzip_bytes"]), "int8_accuracy": float(row["val_accuracy"]),
                        "delta_points": -float(row["loss_points"]), "images": int(len(s.data.y_val)),
                        "split": "validation"}
        if weights is not None:
            s.status = (f"search trial {number} loaded: its settings are on the sliders, its fine-tuned model and "
                        "masks are the session's (ready for QAT and export), and its int8 .tflite is ready to "
                        "download")
        else:
            s.status = (f"search trial {number} loaded: its settings are on the sliders (masks by magnitude, not "
                        "fine-tuned: only the Pareto front's models are kept) and its int8 .tflite is ready to "
                        "download")
        return True


class SearchView(View):
    """Size against validation accuracy of every finished trial; the front as a line, the pick as a star.
    Clicking a point (on the displayed figure) loads that trial into the session."""

    traits = ("trials", "pick")
    title = "Search: int8 size against validation accuracy (click a point to load it)"
    needs_model = False

    def __init__(self, search: SearchState):
        super().__init__(search, height=340)

    def setup(self):
        self.figure.add_scatter(name="trials", mode="markers", marker=dict(size=9, color="#9ecae1"))
        self.figure.add_scatter(name="Pareto front", mode="lines+markers", marker=dict(size=10, color="#1f77b4"))
        self.figure.add_scatter(name="pick", mode="markers", marker=dict(size=18, symbol="star", color="#d62728"))
        self.figure.add_scatter(name="budget", mode="lines", line=dict(dash="dash", color="#999"))
        self.figure.update_layout(xaxis=dict(title="gzip -9 bytes of the int8 .tflite (log)", type="log"),
                                  yaxis=dict(title="validation accuracy (int8)", tickformat=".1%"),
                                  legend=dict(orientation="h", y=-0.25), margin=dict(l=60))

    def _show(self) -> None:
        super()._show()
        for trace in self.figure.data[:3]:
            trace.on_click(self._clicked)

    def data(self) -> dict:
        frame = self.state.trials
        empty = {"x": [], "y": [], "trial": []}
        if frame is None or not len(frame):
            return {"trials": empty, "front": empty, "pick": empty, "budget": empty}
        done = frame[frame["state"] == "complete"]
        front = pareto_front(frame)

        def points(rows):
            return {"x": rows["gzip_bytes"].astype(float).tolist(), "y": rows["val_accuracy"].astype(float).tolist(),
                    "trial": rows["trial"].astype(int).tolist()}
        pick = done[done["trial"] == self.state.pick] if self.state.pick is not None else done.iloc[:0]
        level = self.state.baseline_validation - self.state.max_loss / 100.0
        xs = done["gzip_bytes"].astype(float)
        budget = ({"x": [xs.min() * 0.8, xs.max() * 1.25], "y": [level, level], "trial": []}
                  if len(done) and np.isfinite(level) else empty)
        return {"trials": points(done), "front": points(front), "pick": points(pick), "budget": budget}

    def draw(self) -> None:
        d = self.data()
        for trace, key in zip(self.figure.data, ("trials", "front", "pick", "budget")):
            trace.x, trace.y = d[key]["x"], d[key]["y"]
            trace.customdata = d[key]["trial"]
            trace.text = [f"trial {n}" for n in d[key]["trial"]]
        self.show_empty(None if d["trials"]["x"] else "No finished trial yet: Start search, and each trial appears "
                                                      "here as it ends.")

    def _clicked(self, trace, points, state) -> None:
        if points.point_inds:
            self.state.apply_trial(int(trace.customdata[points.point_inds[0]]))


class SearchPanel:
    """Inputs (budget, max loss, workers), Start / Stop, status with ETA, the dashboard link and the view."""

    def __init__(self, session):
        self.state = SearchState(session)
        self.view = SearchView(self.state)
        cores = os.cpu_count() or 1
        self.trials = w.BoundedIntText(value=12, min=1, max=10000, description="trials", style=STYLE)
        self.minutes = w.BoundedFloatText(value=0, min=0, max=10080, description="minutes (0: none)", style=STYLE)
        self.max_loss = w.BoundedFloatText(value=1.0, min=0, max=100, step=0.1, description="max loss (points)",
                                           style=STYLE)
        self.workers = w.BoundedIntText(value=cores, min=1, max=64, description="workers", style=STYLE)
        self.epochs = w.BoundedIntText(value=4, min=1, max=50, description="epochs per trial", style=STYLE,
                                       tooltip="the most fine-tune epochs a trial samples (the least is 1)")
        self.start_button = w.Button(description="Start search", button_style="primary")
        self.stop_button = w.Button(description="Stop", button_style="warning", disabled=True)
        self.status = w.HTML()
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.state.stop())
        self.state.observe(lambda c: self._show(), names=["running", "message", "done", "dashboard"])
        session.observe(lambda c: self._show(), names=["busy"])
        self._show()

    def start(self) -> bool:
        return self.state.start(trials=self.trials.value, max_loss=self.max_loss.value, workers=self.workers.value,
                                max_epochs=self.epochs.value, minutes=self.minutes.value or None)

    def _show(self) -> None:
        s = self.state
        self.start_button.disabled = s.running or s.session.busy
        self.stop_button.disabled = not s.running
        link = (f' · <a href="{html.escape(s.dashboard)}" target="_blank" rel="noopener">Dask dashboard</a>'
                if s.dashboard else "")
        self.status.value = f"{html.escape(s.message)}<br>{html.escape(s.eta_text())}{link}"

    @property
    def widget(self):
        inputs = w.VBox([self.trials, self.minutes, self.max_loss, self.workers, self.epochs,
                         w.HBox([self.start_button, self.stop_button]), self.status], layout=w.Layout(width="40%"))
        view = w.Box([self.view.widget], layout=w.Layout(width="60%"))
        return w.VBox([w.HTML("<h3>Search: the smallest int8 model within an accuracy budget</h3>"),
                       w.HBox([inputs, view])])
