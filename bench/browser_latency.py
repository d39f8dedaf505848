"""Slider latency as a user feels it: from the key press on a sparsity slider to each changed view on the page.

Serves the Studio with workbench_server (as `make app`), opens it in Debian's Chromium (Playwright), and for
each move presses ArrowRight on one layer's sparsity slider, then times, in the page, when each view has
drawn its new state: the histogram and kernel heatmap of that layer, the model overview, and the status
readout ("fc1: 31% pruned"). A view counts as changed when its plotly data differ from before the press and
plotly has laid it out. Writes bench/results/browser_latency.json and prints p50/p95 per view.

    .venv/bin/python bench/browser_latency.py [--moves 20] [--layers conv1,fc1]
    .venv/bin/python bench/browser_latency.py --model mobilenet_v1      # layers conv1,conv_pw_13

MobileNet v1 (1.0, 3.2M weights) is loaded through the Studio's model picker from a baseline this script
trains for one epoch on the bundled MNIST sample first (latency does not depend on how well it is trained).
Results: bench/results/browser_latency.json (LeNet-5), browser_latency_mobilenet_v1.json.

Run it with nothing else on the machine: these are wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CHROMIUM = "/usr/bin/chromium"
VIEWS = ("histogram", "kernel-heatmap", "model-overview")
GOAL = {"lenet5": 0.3, "mobilenet_v1": 0.6}  # p95 seconds, issue #13

# In the page: a fingerprint of what each view shows, and a wait for all of them to change after a key press.
WATCH = """
([views, timeout]) => { window.__wbWatch = new Promise(resolve => {
  const print = view => {
    const el = document.querySelector(`.wb-view-${view} .js-plotly-plot`);
    if (!el || !el._fullLayout || !el.data) return null;
    return JSON.stringify(el.data.map(t => [t.x, t.y, t.z, t.source]));
  };
  const status = () => Array.from(document.querySelectorAll('.widget-html-content b')).map(b => b.innerText).join('|');
  const before = Object.fromEntries(views.map(v => [v, print(v)]));
  const statusBefore = status();
  const done = {};
  let start = null;
  const installed = performance.now();
  document.addEventListener('keydown', () => { start = performance.now(); }, {capture: true, once: true});
  const tick = () => {
    const now = performance.now();
    if (start !== null) {
      for (const v of views) {
        if (!(v in done)) { const p = print(v); if (p !== null && p !== before[v]) done[v] = (now - start) / 1000; }
      }
      if (!('status' in done) && status() !== statusBefore) done.status = (now - start) / 1000;
    }
    const finished = start !== null && views.every(v => v in done) && 'status' in done;
    if (finished || now - installed > timeout) resolve(done); else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}); return true; }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cache: str, *options: str):
    """workbench_server on a free port of 127.0.0.1 (no session cap unless ``options`` set one): (base, process)."""
    port = free_port()
    env = {**os.environ, "WORKBENCH_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "WORKBENCH_CACHE": cache}
    log = open(pathlib.Path(cache) / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "workbench_server", str(ROOT / "apps"), "--no-browser",
                             f"--port={port}", *(options or ("--max_sessions=0",))], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/voila/tree", timeout=2)
            return base, proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start in 60 s")


def stats(values: list[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"n": int(a.size), "p50_s": float(np.percentile(a, 50)), "p95_s": float(np.percentile(a, 95)),
            "max_s": float(a.max())}


DEFAULT_LAYERS = {"lenet5": "conv1,fc1", "mobilenet_v1": "conv1,conv_pw_13"}  # the smallest and largest kernels


def result_path(model: str) -> pathlib.Path:
    return RESULTS / ("browser_latency.json" if model == "lenet5" else f"browser_latency_{model}.json")


def prepare_baseline(model: str, cache: str) -> str:
    """A baseline for ``model`` on the bundled MNIST sample in the server's cache (LeNet-5 ships one): trained
    for one epoch here, so that the Studio loads it instead of training one. Returns what was done."""
    if model == "lenet5":
        return "the packaged LeNet-5 baseline"
    code = (f"import os; from workbench import stages; from workbench.baselines import baseline_key, cache_dir, "
            f"save_baseline; from workbench.config import TrainConfig; from workbench.data import load_dataset\n"
            f"data = load_dataset('mnist'); run = stages.start_run({model!r}, data, training={{'baseline': "
            f"TrainConfig(epochs=1, patience=0)}}); stages.train_baseline(run)\n"
            f"save_baseline(run.baseline, cache_dir() / (baseline_key({model!r}, data) + '.keras'))")
    env = {**os.environ, "WORKBENCH_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "WORKBENCH_CACHE": cache}
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
    return f"{model} trained 1 epoch on the bundled MNIST sample by this script"


def measure(base: str, layers: list[str], moves: int, timeout_ms: float = 10000, model: str = "lenet5") -> dict:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_default_timeout(180_000)
        page.goto(base + "/voila/render/compression_studio.ipynb")
        page.wait_for_selector(".wb-view-histogram .js-plotly-plot")
        if model != "lenet5":  # as a user would: pick it and press Load
            page.locator(".widget-dropdown:has(label:text-is('model')) select").select_option(model)
            page.locator("button:has-text('Load')").first.click()
            page.wait_for_selector(f".widget-slider:has(label:text-is('{layers[-1]}'))", timeout=600_000)
            page.wait_for_timeout(3000)
        for layer in layers:
            page.locator(".widget-dropdown:has(label:text-is('show layer')) select").select_option(layer)
            page.wait_for_timeout(1500)
            handle = page.locator(f".widget-slider:has(label:text-is('{layer}'))").first.locator(".noUi-handle")
            handle.focus()
            times: dict[str, list[float]] = {name: [] for name in (*VIEWS, "status")}
            missed = 0
            for _ in range(moves):
                page.evaluate(WATCH, [list(VIEWS), timeout_ms])  # installs the watch, returns at once
                handle.press("ArrowRight")
                done = page.evaluate("window.__wbWatch")  # waits for every view, or the timeout
                missed += len(times) - len(done)
                for name, seconds in done.items():
                    times[name].append(seconds)
                page.wait_for_timeout(300)  # a user's pause between presses
            out[layer] = {"views": {name: stats(v) for name, v in times.items() if v}, "missed": missed}
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--model", default="lenet5", choices=sorted(GOAL))
    parser.add_argument("--layers", default=None, help="comma-separated; default: the model's smallest and largest")
    args = parser.parse_args()
    layers = (args.layers or DEFAULT_LAYERS[args.model]).split(",")
    with tempfile.TemporaryDirectory() as cache:
        baseline = prepare_baseline(args.model, cache)
        base, proc = start_server(cache)
        try:
            per_layer = measure(base, layers, args.moves, model=args.model)
        finally:
            proc.terminate()
            proc.wait(20)
    p95 = max(v["p95_s"] for layer in per_layer.values() for v in layer["views"].values())
    goal = GOAL[args.model]
    result = {"what": "key press on a sparsity slider -> each view drawn anew, in Chromium (Playwright)",
              "model": args.model, "baseline": baseline, "moves_per_layer": args.moves, "layers": per_layer,
              "worst_p95_s": p95, "goal_p95_s": goal, "goal_met": p95 <= goal,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "time": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(exist_ok=True)
    result_path(args.model).write_text(json.dumps(result, indent=1) + "\n")
    for layer, figures in per_layer.items():
        for view, s in figures["views"].items():
            print(f"{layer:8s} {view:15s} p50 {s['p50_s']:.3f} s  p95 {s['p95_s']:.3f} s  (n={s['n']})")
    print(f"worst p95 {p95:.3f} s; goal {goal} s: {'met' if result['goal_met'] else 'missed'}")


if __name__ == "__main__":
    main()
