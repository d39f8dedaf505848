"""Paper reproduction app: the seed paper's table next to our runs and the anchors, with charts, and a live
LeNet-5 run with its size breakdown (which step bought what)."""

from __future__ import annotations

import html
import math
import threading
import time

import ipywidgets as w
import pandas as pd

from workbench.anchors import ANCHORS, all_anchors
from workbench.baselines import get_baseline
from workbench.breakdown import size_breakdown
from workbench.config import PruneConfig, TrainConfig
from workbench.pipeline import STAGES, compress
from workbench.published import bench_rows
from workbench.pruning.api import strip_pruning
from workbench.widgets.controls import eta_text
from workbench.widgets.dispatch import post
from workbench.widgets.jobs import Job
from workbench.widgets.runs import time_left
from workbench.widgets.views.figure import SyncedFigureWidget

_PAPER = next(a for a in ANCHORS if a["label"] == "Seed paper (2021): LeNet-5")
PAPER_TEXT = (f"{_PAPER['fp32_bytes'] / 1e6:.2f} MB → {_PAPER['bytes'] / 1e6:.2f} MB ({_PAPER['ratio']:.1f}×), "
              f"{_PAPER['delta_points']:+.1f} points").replace("-", "−")
COLUMNS = ["result", "fp32 bytes", "compressed bytes", "ratio", "accuracy change (points)"]
HEADERS = {"step": "step", "bytes": "file bytes", "gzip_bytes": "gzip -9 bytes (shipped)",
           "what it shows": "what it shows", "ratio_vs_fp32": "ratio vs fp32 parameters"}
MISSING = "—"  # a figure the source does not give


def published_table() -> pd.DataFrame:
    return pd.DataFrame([{"result": a["label"], "fp32 bytes": a["fp32_bytes"], "compressed bytes": a["bytes"],
                          "ratio": a["ratio"], "accuracy change (points)": a["delta_points"]} for a in all_anchors()],
                        columns=COLUMNS)


def our_table() -> pd.DataFrame:
    """This workbench's benchmark rows (``make bench``), as shipped in the package (mean over seeds, test split)."""
    rows = [{"result": f"this workbench: {r['row']} ({r['seeds']} seeds)", "fp32 bytes": r["fp32_bytes"],
             "compressed bytes": r["gzip_bytes"], "ratio": r["ratio"],
             "accuracy change (points)": r["delta_points"], "settings": r.get("settings", MISSING)}
            for r in bench_rows()]
    return pd.DataFrame(rows, columns=[*COLUMNS, "settings"])


def breakdown_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``size_breakdown``'s frame with the headers people read."""
    return frame.rename(columns=HEADERS)


def _safe(pattern: str):
    return lambda v: MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else pattern.format(v)


def table_html(frame: pd.DataFrame) -> str:
    """A table with thousands separators, ratios as ×, signed points and a dash where a source gives nothing."""
    fmt = {"fp32 bytes": "{:,.0f}", "compressed bytes": "{:,.0f}", "file bytes": "{:,.0f}",
           "gzip -9 bytes (shipped)": "{:,.0f}", "ratio": "{:.1f}×", "ratio vs fp32 parameters": "{:.1f}×",
           "accuracy change (points)": "{:+.2f}"}
    return frame.to_html(index=False, border=0, na_rep=MISSING,
                         formatters={k: _safe(v) for k, v in fmt.items() if k in frame.columns})


def comparison_points(live: dict | None = None) -> list[dict]:
    """Every result with a size and an accuracy change: published anchors, our bench rows and the live run."""
    points = []
    for source, frame in (("published", published_table()), ("this workbench (make bench)", our_table())):
        for row in frame.itertuples(index=False):
            ratio, delta = row[3], row[4]
            if all(isinstance(v, (int, float)) and math.isfinite(v) for v in (ratio, delta)):
                points.append({"source": source, "label": row[0], "ratio": float(ratio), "delta": float(delta)})
    if live is not None:
        points.append({"source": "live run (quick settings)", **live})
    return points


def live_vs_bench_note(epochs: int, sparsity: float) -> str:
    return (f"The live run below uses quick settings so it ends in minutes: one global sparsity of {sparsity:.0%}, "
            f"{epochs} fine-tune epochs, 1 QAT epoch, 8 bits everywhere, one seed. The bench rows use the settings "
            "in their table's last column (per-layer sparsities, fewer bits where a layer allows it, more epochs), "
            "a baseline trained to convergence, and the mean over their seeds: that is why their ratios are larger.")


class PaperApp:
    """Tables and charts, plus a button that reproduces the LeNet-5 row live (in the background, with Stop)."""

    def __init__(self, epochs: int = 4, sparsity: float = 0.9, train_limit: int = 0):
        self.epochs, self.sparsity, self.train_limit = epochs, sparsity, train_limit
        self.tables = w.HTML()
        self.comparison = SyncedFigureWidget(layout=dict(
            title="Published results and this workbench", height=420, margin=dict(l=60, r=20, t=50, b=60),
            xaxis=dict(title="compression ratio (log)", type="log"),
            yaxis=dict(title="accuracy change (points)"), legend=dict(orientation="h", y=-0.25)))
        self.steps = SyncedFigureWidget(layout=dict(
            title="Which step bought what (live run)", height=360, margin=dict(l=60, r=20, t=50, b=120),
            yaxis=dict(title="bytes (log)", type="log")))
        self.steps.add_annotation(text="Press 'Reproduce the LeNet-5 row' to measure each step here.",
                                  showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        self.breakdown = w.HTML()
        self.status = w.HTML()
        self.note = w.HTML(f"<p><i>{html.escape(live_vs_bench_note(epochs, sparsity))}</i></p>")
        self.progress = w.FloatProgress(min=0, max=1, description="progress")
        self.eta = w.Label()
        self.run_button = w.Button(description="Reproduce the LeNet-5 row", button_style="primary")
        self.stop_button = w.Button(description="Stop", button_style="danger", disabled=True)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.job and self.job.stop())
        self.job = None
        self.report = None
        self.show_tables()
        self.draw_comparison()

    def show_tables(self):
        ours = our_table()
        note = "" if len(ours) else "<p><i>No benchmark results yet: run <code>make bench</code>.</i></p>"
        self.tables.value = ("<h4>Published results</h4>" + table_html(published_table()) +
                             "<h4>This workbench (make bench: mean over seeds, int8 .tflite on the test split)</h4>"
                             + (table_html(ours) if len(ours) else "") + note)

    def draw_comparison(self, live: dict | None = None):
        points = comparison_points(live)
        with self.comparison.batch_update():
            self.comparison.data = []
            for source, symbol in (("published", "diamond"), ("this workbench (make bench)", "circle"),
                                   ("live run (quick settings)", "star")):
                chosen = [p for p in points if p["source"] == source]
                if chosen:
                    self.comparison.add_scatter(
                        name=source, x=[p["ratio"] for p in chosen], y=[p["delta"] for p in chosen],
                        text=[p["label"] for p in chosen], mode="markers", marker=dict(size=11, symbol=symbol),
                        hovertemplate="%{text}<br>%{x:.1f}×, %{y:+.2f} points<extra></extra>")

    def draw_steps(self, frame: pd.DataFrame):
        shipped = frame["gzip_bytes"].fillna(frame["bytes"])
        with self.steps.batch_update():
            self.steps.layout.annotations = []
            self.steps.data = []
            self.steps.add_bar(x=list(frame["step"]), y=[int(v) for v in shipped],
                               text=[f"{v:,.0f} B" for v in shipped], textposition="outside",
                               hovertemplate="%{x}: %{y:,} bytes<extra></extra>", name="shipped bytes")

    def run(self) -> bool:
        if self.job is not None and self.job.thread.is_alive():
            return False
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.status.value = "training… (prune → fine-tune → QAT → int8)"
        stages = [*STAGES, "done"]  # the pipeline's own stage names (a copy here once fell behind and crashed)
        started = time.monotonic()

        def on_stage(stage, info):
            done = (stages.index(stage) + 1) / len(stages) if stage in stages else self.progress.value
            left = time_left(done, time.monotonic() - started)
            post(setattr, self.progress, "value", done)
            post(setattr, self.eta, "value", eta_text(left))

        def work(stop: threading.Event):
            model, data, _ = get_baseline("lenet5", "mnist")
            if self.train_limit:
                data = data.subset(train=self.train_limit)
            report = compress(model, data, prune=PruneConfig(sparsity=self.sparsity, schedule="polynomial"),
                              finetune=TrainConfig(epochs=self.epochs), qat=TrainConfig(epochs=1, learning_rate=1e-4),
                              on_stage=on_stage, stop=stop)
            if stop.is_set():
                return None
            art = report.artifacts
            frame = size_breakdown(art["baseline"], strip_pruning(art["pruned"]), art["qat"], data.x_train[:300])
            return report, frame

        self.job = Job("reproduction", work, lambda: None, lambda job: post(self._done, job)).start()
        return True

    def _done(self, job):
        self.run_button.disabled, self.stop_button.disabled = False, True
        self.eta.value = ""
        if job.error:
            self.status.value = f"<span style='color:#c00'>failed: {html.escape(job.error)}</span>"
            return
        if job.stopped or job.result is None:
            self.status.value = "stopped; nothing changed"
            return
        self.report, frame = job.result
        a, s = self.report.accuracy, self.report.sizes
        delta = 100 * (a["int8"] - a["baseline"])
        self.status.value = (f"<b>LeNet-5 here:</b> {s['fp32_bytes']:,} → {s['gzip_bytes']:,} bytes shipped "
                             f"(<b>{s['compression_ratio']:.1f}×</b>), int8 accuracy {a['int8']:.2%} vs baseline "
                             f"{a['baseline']:.2%} ({delta:+.2f} points, test split); paper: {PAPER_TEXT}.")
        self.breakdown.value = "<h4>Which step bought what</h4>" + table_html(breakdown_table(frame))
        self.draw_steps(frame)
        self.draw_comparison({"label": "live LeNet-5 run", "ratio": float(s["compression_ratio"]),
                              "delta": float(delta)})

    @property
    def widget(self):
        return w.VBox([w.HTML("<h2>Reproducing the seed paper</h2>"), self.tables, self.comparison, self.note,
                       w.HBox([self.run_button, self.stop_button, self.progress, self.eta]), self.status,
                       self.steps, self.breakdown])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def paper_app(**kwargs) -> PaperApp:
    return PaperApp(**kwargs)
