"""RESULTS.md's and the README's sections on timings: the Studio under load, slider latency in the browser and in the
kernel, training speed against plain Keras, and the QAT profile. Read from bench/results/*.json; written by
bench/tables.py."""

from __future__ import annotations

import json
import pathlib

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def _load_rows(result: dict) -> list[dict]:
    """studio_load rows by visitors, then pool and fill delay (rows from before those settings: 1 and Voila's)."""
    return sorted(result["rows"], key=lambda r: (r["sessions"], r.get("studio_pool", 1), r.get("fill_delay_s") or 0))


def studio_load_summary(result: dict | None) -> list[str]:
    """The README's lines on how many visitors one server holds (bench/studio_load.py; details in RESULTS.md)."""
    if not result:
        return []
    lines = ["", f"Visitors at once on one server (`bench/studio_load.py`: each opens the Studio, then all move a "
                 f"slider {result['moves_per_session']} times together; {result['machine']}; details in "
                 f"bench/RESULTS.md):", ""]
    for row in _load_rows(result):
        load = row.get("load_s") or {}
        leaked = row.get("leaked", max(0, row["kernels_left"] - row["pool"]))
        delay = f", replaced after {row['fill_delay_s']:.0f} s" if row.get("fill_delay_s") else ""
        lines.append(f"- {row['sessions']} (pre-heated Studios: {row.get('studio_pool', 1)}{delay}): "
                     f"{row['drawn']}/{row['sessions']} drawn"
                     + (f" ({load['p50_s']:.0f} s p50, {load['max_s']:.0f} s at most)" if load else "")
                     + f", {row['moves_complete']}/{row['moves']} moves changed every view, worst view p95 "
                     f"{row['worst_p95_s'] or float('nan'):.1f} s, {row['peak_total_rss_gib']:.1f} GiB at the peak, "
                     f"{leaked} kernel{'s' if leaked != 1 else ''} left beyond the pool ({row.get('time', '—')})")
    return lines


def browser_latency_summary(measured: list[dict]) -> list[str]:
    """The README's lines on slider latency as a browser user feels it (details in RESULTS.md)."""
    if not measured:
        return []
    lines = ["", "Slider latency in the browser (`bench/browser_latency.py`: Chromium, key press on a sparsity "
                 "slider to every view drawn anew; details in bench/RESULTS.md):", ""]
    for r in measured:
        p50 = max(v["p50_s"] for layer in r["layers"].values() for v in layer["views"].values())
        lines.append(f"- {r['model']}: worst view p50 {p50:.2f} s, p95 {r['worst_p95_s']:.2f} s (goal p95 ≤ "
                     f"{r['goal_p95_s']} s: {'met' if r['goal_met'] else 'missed'}; {r['time']})")
    return lines


def load_studio_load() -> dict | None:
    path = RESULTS / "studio_load.json"
    return json.loads(path.read_text()) if path.is_file() else None


def studio_load_lines(result: dict | None) -> list[str]:
    """N concurrent Studio visitors on one server (bench/studio_load.py)."""
    if not result:
        return []
    lines = ["", f"Studio capacity (bench/studio_load.py: N Chromium visitors at once on one server, each moving "
                 f"{result['layer']}'s sparsity slider {result['moves_per_session']} times; {result['machine']}):", "",
             "| visitors | Studio kernels pre-heated | Studios drawn | time to draw, p50 / max (s) "
             "| moves with every view changed "
             "| p50 / p95 worst view (s) | kernel RSS median (GiB) | server total RSS peak (GiB) "
             "| kernels left after the tabs closed (pre-heated pool) | figures anywidget refused at load | measured |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in _load_rows(result):
        views = row["latency"].values()
        p50 = max((v["p50_s"] for v in views), default=float("nan"))
        load = row.get("load_s") or {}
        load_text = f"{load['p50_s']:.0f} / {load['max_s']:.0f}" if load else "—"
        pool = row.get("studio_pool", 1)
        pool_text = (f"{pool}" + (f" (ready {row['pool_wait_s']:.0f} s after the server started)"
                                  if row.get("pool_wait_s") else "")
                     + (f", a taken one replaced after {row['fill_delay_s']:.0f} s" if row.get("fill_delay_s") else ""))
        lines.append(f"| {row['sessions']} | {pool_text} | {row['drawn']}/{row['sessions']} | {load_text} "
                     f"| {row['moves_complete']}/{row['moves']} "
                     f"| {p50:.2f} / {row['worst_p95_s'] or float('nan'):.2f} | {row['kernel_rss_gib']['median']:.2f} "
                     f"| {row['peak_total_rss_gib']:.1f} | {row['kernels_left']} ({row['pool']}) "
                     f"| {row.get('anywidget_errors', '—')} | {row.get('time', '—')} |")
    return lines + ["", "A pre-heated Studio kernel has run the Studio before its visitor arrives (`make app STUDIO_POOL=P`); "
                        "past the pool, each visitor waits for a kernel to start and run it. "
                        "A figure's model that is not ready 2 s after it reaches the page is refused by anywidget; since "
                        "this workbench's figures take the kernel's messages anyway once drawn (assets.py), a refusal "
                        "costs nothing when every move still changed every view."]


def load_train_speed() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(RESULTS.glob("train_speed_*.json"))]


def train_speed_lines(measured: list[dict]) -> list[str]:
    """Training images/s of each stage against plain Keras 3 fit (bench/train_speed.py)."""
    lines = []
    for r in measured:
        lines += ["", f"Training speed, {r['model']} on {r['images']:,} {r['dataset']} images, batch {r['batch']} "
                      f"(bench/train_speed.py: {r['epochs_per_call']} epochs per call, {len(r['rounds'])} rounds "
                      f"alternating the methods, {r['time']}; steady state = epochs after the first; plain Keras fit "
                      "uses Keras' own layers, the stages the workbench's"
                      + (", whose BatchNorm trains through TensorFlow's fused kernel" if r["model"] == "mobilenet_v1"
                         and r["time"] >= "2026-12-01" else "") + "):", "",
                  "| stage | images/s | × plain Keras fit | goal | fixed cost per call (s) |", "|---|---|---|---|---|"]
        for method, s in r["summary"].items():
            goal = "—" if s["goal"] is None else f"≥{s['goal']}× {'✓' if s['goal_met'] else '✗'}"
            lines.append(f"| {method} | {s['images_per_s']:,.0f} | {s['vs_keras_fit']:.2f}× | {goal} | "
                         f"{s['fixed_cost_s']:.1f} |")
    return lines


def load_qat_profile() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(RESULTS.glob("qat_profile_*.json"))]


def qat_profile_lines(measured: list[dict]) -> list[str]:
    """Where the QAT step's time went: ablations against the float model's fit (bench/qat_profile.py)."""
    lines = []
    for r in measured:
        code = r.get("code", "the current code")
        lines += ["", f"QAT step ablations, {r['model']} on {r['images']:,} images, batch {r['batch']} "
                      f"(bench/qat_profile.py, plain model.fit, second epoch, {len(r['rounds'])} rounds alternating; "
                      f"{code}):", "", "| variant | images/s | × float fit |", "|---|---|---|"]
        for variant, s in r["summary"].items():
            lines.append(f"| {variant} | {s['images_per_s']:,.0f} | "
                         + (f"{s['vs_float']:.2f}× |" if s.get("vs_float") is not None else "— |"))
    return lines


def load_browser_latency() -> list[dict]:
    """bench/browser_latency.py's results: LeNet-5 (browser_latency.json) first, then other models."""
    paths = [RESULTS / "browser_latency.json", *sorted(RESULTS.glob("browser_latency_*.json"))]
    return [json.loads(path.read_text()) for path in paths if path.is_file()]


def browser_latency_lines(result: dict | None) -> list[str]:
    """Slider latency in Chromium, key press to each view drawn anew (bench/browser_latency.py)."""
    if not result:
        return ["", "Slider latency in the browser (bench/browser_latency.py): not measured on a quiet machine yet."]
    lines = ["", f"Slider latency in the browser (bench/browser_latency.py: Chromium via Playwright, key press on a "
                 f"sparsity slider to each view drawn anew, {result['model']}, {result['moves_per_layer']} moves per "
                 f"layer, {result['time']}; goal p95 ≤ {result['goal_p95_s']} s: "
                 f"**{'met' if result['goal_met'] else 'missed'}**, worst p95 {result['worst_p95_s']:.2f} s):", "",
             "| layer | view | p50 (s) | p95 (s) |", "|---|---|---|---|"]
    for layer, figures in result["layers"].items():
        for view, stat in figures["views"].items():
            lines.append(f"| {layer} | {view} | {stat['p50_s']:.2f} | {stat['p95_s']:.2f} |")
    return lines


def load_latency() -> dict | None:
    path = RESULTS / "widget_latency.json"
    return json.loads(path.read_text()) if path.is_file() else None
