"""Paper reproduction app: the seed paper's table next to our runs and the anchors, and a size breakdown."""

from __future__ import annotations

import html
import threading

import ipywidgets as w
import pandas as pd

from workbench.anchors import ANCHORS, all_anchors
from workbench.baselines import get_baseline
from workbench.breakdown import size_breakdown
from workbench.config import PruneConfig, TrainConfig
from workbench.pipeline import compress
from workbench.published import bench_rows
from workbench.pruning.api import strip_pruning
from workbench.widgets.dispatch import post
from workbench.widgets.jobs import Job

_PAPER = next(a for a in ANCHORS if a["label"] == "Seed paper (2021): LeNet-5")
PAPER_TEXT = (f"{_PAPER['fp32_bytes'] / 1e6:.2f} MB → {_PAPER['bytes'] / 1e6:.2f} MB ({_PAPER['ratio']:.1f}×), "
              f"{_PAPER['delta_points']:+.1f} points").replace("-", "−")


def published_table() -> pd.DataFrame:
    return pd.DataFrame([{"result": a["label"], "fp32 bytes": a["fp32_bytes"], "compressed bytes": a["bytes"],
                          "ratio": a["ratio"], "accuracy change (points)": a["delta_points"]} for a in all_anchors()])


def our_table() -> pd.DataFrame:
    """This workbench's benchmark rows (``make bench``), as shipped in the package (mean over seeds, test split)."""
    rows = [{"result": f"this workbench: {r['row']} ({r['seeds']} seeds)", "fp32 bytes": r["fp32_bytes"],
             "compressed bytes": r["gzip_bytes"], "ratio": r["ratio"],
             "accuracy change (points)": r["delta_points"]} for r in bench_rows()]
    return pd.DataFrame(rows, columns=["result", "fp32 bytes", "compressed bytes", "ratio", "accuracy change (points)"])


def _html(frame: pd.DataFrame) -> str:
    fmt = {"fp32 bytes": "{:,.0f}".format, "compressed bytes": "{:,.0f}".format, "bytes": "{:,.0f}".format,
           "gzip_bytes": lambda v: "" if pd.isna(v) else f"{v:,.0f}", "ratio": "{:.1f}×".format,
           "ratio_vs_fp32": "{:.1f}×".format, "accuracy change (points)": "{:+.2f}".format}
    return frame.to_html(index=False, border=0, formatters={k: v for k, v in fmt.items() if k in frame.columns})


class PaperApp:
    """Tables plus a button that reproduces the LeNet-5 row live (in the background, with Stop)."""

    def __init__(self, epochs: int = 4, sparsity: float = 0.9):
        self.epochs, self.sparsity = epochs, sparsity
        self.tables = w.HTML()
        self.breakdown = w.HTML()
        self.status = w.HTML()
        self.progress = w.FloatProgress(min=0, max=1, description="progress")
        self.run_button = w.Button(description="Reproduce the LeNet-5 row", button_style="primary")
        self.stop_button = w.Button(description="Stop", button_style="danger", disabled=True)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.job and self.job.stop())
        self.job = None
        self.report = None
        self.show_tables()

    def show_tables(self):
        ours = our_table()
        note = "" if len(ours) else "<p><i>No benchmark results yet: run <code>make bench</code>.</i></p>"
        self.tables.value = ("<h4>Published results</h4>" + _html(published_table()) +
                             "<h4>This workbench (make bench: mean over seeds, int8 .tflite on the test split)</h4>" + (_html(ours) if len(ours) else "") + note)

    def run(self) -> bool:
        if self.job is not None and self.job.thread.is_alive():
            return False
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.status.value = "training… (prune → fine-tune → QAT → int8)"
        stages = ["data", "baseline", "prune", "finetune", "qat", "export", "done"]

        def on_stage(stage, info):
            post(setattr, self.progress, "value", (stages.index(stage) + 1) / len(stages))

        def work(stop: threading.Event):
            model, data, _ = get_baseline("lenet5", "mnist")
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
        if job.error:
            self.status.value = f"<span style='color:#c00'>failed: {html.escape(job.error)}</span>"
            return
        if job.stopped or job.result is None:
            self.status.value = "stopped; nothing changed"
            return
        self.report, frame = job.result
        a, s = self.report.accuracy, self.report.sizes
        self.status.value = (f"<b>LeNet-5 here:</b> {s['fp32_bytes']:,} → {s['gzip_bytes']:,} bytes shipped "
                             f"(<b>{s['compression_ratio']:.1f}×</b>), int8 accuracy {a['int8']:.2%} vs baseline "
                             f"{a['baseline']:.2%} ({100 * (a['int8'] - a['baseline']):+.2f} points); "
                             f"paper: {PAPER_TEXT}.")
        self.breakdown.value = "<h4>Which step bought what</h4>" + _html(frame)

    @property
    def widget(self):
        return w.VBox([w.HTML("<h2>Reproducing the seed paper</h2>"), self.tables,
                       w.HBox([self.run_button, self.stop_button, self.progress]), self.status, self.breakdown])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def paper_app(**kwargs) -> PaperApp:
    return PaperApp(**kwargs)
