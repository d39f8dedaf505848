"""Capacity: N Studio sessions at once on one server, each a user moving sliders, measured in the browser.

Serves the Studio with workbench_server (as `make app`, with a pre-heated kernel), opens N Chromium contexts
(N separate visitors) at once, waits until every Studio has drawn, then has every visitor press ArrowRight on
fc1's sparsity slider `--moves` times, all at the same time, timing each press to its changed views on the page
(as bench/browser_latency.py does). Meanwhile it samples each kernel's resident memory (RSS, the kernel and its
children). Then every tab closes as a user's would, and it checks that the kernels end.

For each N: sessions opened and drawn, moves that reached every view ("nothing lost"), slider latency p50/p95
over all visitors, per-kernel RSS (median, max), the server's total RSS (server + kernels) at the peak, and the
kernels left 30 s after the tabs closed. Writes bench/results/studio_load.json.

    .venv/bin/python bench/studio_load.py [--sessions 1,5,10,20] [--moves 10]

Run it with nothing else on the machine: these are wall times and memory under load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import platform
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_latency import CHROMIUM, RESULTS, VIEWS, WATCH, start_server, stats  # noqa: E402

LAYER = "fc1"
PROBLEMS = ("[W ", "[E ", "WARNING", "ERROR", "Traceback", "Exception", "Error:")
GIB = 1024 ** 3
# --pool_size=1 keeps one pre-heated kernel ready per notebook that the server serves (the Studio and the paper app);
# --studio_pool=P keeps P for the Studio
APPS = len(list((pathlib.Path(__file__).resolve().parents[1] / "apps").glob("*.ipynb")))


def kernels(server: psutil.Process) -> list[psutil.Process]:
    """The server's kernel processes (ipykernel), each with its own RSS."""
    found = []
    for child in server.children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def pooled(studio_pool: int) -> int:
    """Pre-heated kernels the server keeps on purpose: one per app, ``studio_pool`` (at least one) for the Studio."""
    return APPS - 1 + max(studio_pool, 1)


def wait_for_pool(server_pid: int, expected: int, timeout_s: float = 1200.0) -> float:
    """Wait until the server's ``expected`` pre-heated kernels have started and gone idle (each has run the Studio,
    as a pool filled before class would have); returns the seconds it took."""
    server = psutil.Process(server_pid)
    started = time.perf_counter()
    quiet = 0  # 3-s windows in a row with every kernel idle (one can fall between a kernel's start and its run)
    while time.perf_counter() - started < timeout_s:
        procs = kernels(server)
        if len(procs) < expected:
            quiet = 0
            time.sleep(2.0)
            continue
        for proc in procs:
            proc.cpu_percent(None)
        time.sleep(3.0)
        busy = 0.0
        for proc in procs:
            try:
                busy += proc.cpu_percent(None)
            except psutil.Error:
                busy += 100.0
        quiet = quiet + 1 if busy < 10.0 else 0  # percent of one core, all kernels together
        if quiet >= 3:
            return time.perf_counter() - started
    raise SystemExit(f"the pool of {expected} kernels did not fill and settle in {timeout_s:.0f} s")


def rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


class MemoryWatch(threading.Thread):
    """Samples every second: each kernel's peak RSS, and the peak of the server's total (server + kernels)."""

    def __init__(self, server_pid: int):
        super().__init__(daemon=True)
        self.server = psutil.Process(server_pid)
        self.per_kernel: dict[int, int] = {}
        self.peak_total = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(1.0):
            total = rss(self.server)
            for kernel in kernels(self.server):
                size = rss(kernel)
                total += size
                self.per_kernel[kernel.pid] = max(self.per_kernel.get(kernel.pid, 0), size)
            self.peak_total = max(self.peak_total, total)


async def open_studio(browser, base: str, timeout_s: float):
    context = await browser.new_context(viewport={"width": 1500, "height": 1100})
    page = await context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    errors: list[str] = []
    # anywidget's "Failed to initialize model" is thrown, so it arrives as a page error, not a console message.
    page.on("console", lambda m: errors.append(m.text) if "anywidget" in m.text and "Failed" in m.text else None)
    page.on("pageerror", lambda error: errors.append(str(error)) if "anywidget" in str(error) else None)
    started = time.perf_counter()
    try:
        await page.goto(base + "/voila/render/compression_studio.ipynb")
        await page.wait_for_selector(".wb-view-histogram .js-plotly-plot")
        await page.wait_for_selector(f".widget-slider:has(label:text-is('{LAYER}')) .noUi-handle")
        load_s = time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 (a page that never drew counts as lost)
        try:  # what the visitor saw instead: Voila's progress text, an error page, or nothing
            seen = await page.evaluate("(document.body?.innerText ?? '').trim().slice(0, 300)", timeout=5_000)
        except Exception as inner:  # noqa: BLE001
            seen = f"(page unreadable: {type(inner).__name__})"
        return {"context": context, "page": page, "load_s": None, "errors": errors,
                "not_drawn": list(VIEWS), "failure": f"{type(exc).__name__}: {exc}"[:500],
                "waited_s": time.perf_counter() - started, "page_text": seen}
    not_drawn = []  # views whose plot never appeared on this page (a move cannot change what is not there)
    for view in VIEWS:
        try:
            await page.wait_for_selector(f".wb-view-{view} .js-plotly-plot", timeout=timeout_s * 1000)
        except Exception:  # noqa: BLE001
            not_drawn.append(view)
    return {"context": context, "page": page, "load_s": load_s, "errors": errors, "not_drawn": not_drawn,
            "all_drawn_s": time.perf_counter() - started}


async def move_sliders(session: dict, moves: int, timeout_ms: float) -> dict:
    page = session["page"]
    await page.locator(".widget-dropdown:has(label:text-is('show layer')) select").select_option(LAYER)
    await page.wait_for_timeout(1500)
    handle = page.locator(f".widget-slider:has(label:text-is('{LAYER}'))").first.locator(".noUi-handle")
    await handle.focus()
    times: dict[str, list[float]] = {name: [] for name in (*VIEWS, "status")}
    missed = complete = 0
    missed_by_view: dict[str, list[int]] = {}  # view -> the moves (0-based) after which it did not change
    for move in range(moves):
        await page.evaluate(WATCH, [list(VIEWS), timeout_ms])
        await handle.press("ArrowRight")
        done = await page.evaluate("window.__wbWatch")
        missed += len(times) - len(done)
        complete += len(done) == len(times)
        for name in set(times) - set(done):
            missed_by_view.setdefault(name, []).append(move)
        for name, seconds in done.items():
            times[name].append(seconds)
        await page.wait_for_timeout(300)
    return {"times": times, "missed": missed, "complete": complete, "missed_by_view": missed_by_view,
            "not_drawn": session["not_drawn"]}


async def one_load(base: str, server_pid: int, n: int, moves: int, studio_pool: int = 1) -> dict:
    from playwright.async_api import async_playwright

    watch = MemoryWatch(server_pid)
    watch.start()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        sessions = await asyncio.gather(*(open_studio(browser, base, 60 + 30 * n) for _ in range(n)))
        drawn = [s for s in sessions if s["load_s"] is not None]
        runs = await asyncio.gather(*(move_sliders(s, moves, 20_000 + 2_000 * n) for s in drawn),
                                    return_exceptions=True)
        ok_runs = [r for r in runs if isinstance(r, dict)]
        for s in sessions:  # as a closed tab: beforeunload runs (Voila's shutdown beacon), then the tab closes
            closed = asyncio.get_running_loop().create_future()
            s["page"].once("close", lambda _page, done=closed: done.done() or done.set_result(True))
            await s["page"].close(run_before_unload=True)  # returns before the page has closed
            try:
                await asyncio.wait_for(closed, 10)
            except asyncio.TimeoutError:
                pass
            await s["context"].close()
        await browser.close()
    await asyncio.sleep(30)  # the pages' shutdown beacons, then count what is left
    watch.done.set()
    watch.join()
    left = len(kernels(psutil.Process(server_pid)))
    kept = pooled(studio_pool)
    per_view = {name: stats([t for r in ok_runs for t in r["times"][name]]) for name in (*VIEWS, "status")
                if any(r["times"][name] for r in ok_runs)}
    per_kernel = np.array(list(watch.per_kernel.values()) or [0], dtype=float)
    return {"sessions": n, "drawn": len(drawn), "load_s": stats([s["load_s"] for s in drawn]) if drawn else None,
            "moves": moves * n, "moves_complete": sum(r["complete"] for r in ok_runs),
            "views_missed": sum(r["missed"] for r in ok_runs) + moves * (n - len(ok_runs)),
            "latency": per_view, "worst_p95_s": max((v["p95_s"] for v in per_view.values()), default=None),
            "kernel_rss_gib": {"median": float(np.median(per_kernel)) / GIB, "max": float(per_kernel.max()) / GIB,
                               "kernels_seen": len(watch.per_kernel)},
            "peak_total_rss_gib": watch.peak_total / GIB, "kernels_left": left, "pool": kept,
            "leaked": max(0, left - kept), "anywidget_errors": sum(len(s["errors"]) for s in sessions),
            # per visitor: views never drawn on the page, and the moves after which each view did not change
            "per_session": [{"load_s": s["load_s"], "all_drawn_s": s.get("all_drawn_s"), "not_drawn": s["not_drawn"],
                             "missed_by_view": r["missed_by_view"] if isinstance(r, dict) else None,
                             "error": None if isinstance(r, dict) else f"{type(r).__name__}: {r}"[:300]}
                            for s, r in zip(drawn, runs)],
            # visitors whose Studio never drew: what the browser reported, and after how long
            "undrawn": [{"failure": s["failure"], "waited_s": s["waited_s"], "page_errors": s["errors"][:5],
                         "page_text": s["page_text"]} for s in sessions if s["load_s"] is None]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", default="1,5,10,20")
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--studio-pool", type=int, default=1,
                        help="pre-heated Studio kernels, ready before the visitors arrive (make app STUDIO_POOL=P)")
    parser.add_argument("--fill-delay", type=float, default=None,
                        help="seconds before Voila starts a taken pre-heated kernel's replacement (its default: 1)")
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",")]
    path = RESULTS / "studio_load.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    # kept: counts (and pools) not run this time
    rows = {(row["sessions"], row.get("studio_pool", 1), row.get("fill_delay_s")): row for row in previous.get("rows", [])}
    for n in counts:
        with tempfile.TemporaryDirectory() as cache:
            base, proc = start_server(cache, "--preheat_kernel=True", "--pool_size=1", f"--max_sessions={n + 1}",
                                      f"--studio_pool={args.studio_pool}",
                                      *([f"--VoilaKernelManager.fill_delay={args.fill_delay}"]
                                        if args.fill_delay is not None else []))
            try:
                # the class arrives once the pool is full, as when the server is started before class (rows before
                # 2026-12-01 did not wait: their visitors came while the pool's kernels still started)
                waited = wait_for_pool(proc.pid, pooled(args.studio_pool))
                row = asyncio.run(one_load(base, proc.pid, n, args.moves, args.studio_pool))
            finally:
                proc.terminate()
                proc.wait(30)
            # the server's (and its kernels') warnings and errors, kept when a Studio never drew
            log = (pathlib.Path(cache) / "server.log").read_text(errors="replace").splitlines()
            problems = [line[:300] for line in log if any(w in line for w in PROBLEMS)]
            row["server_problems"] = {"count": len(problems), "first": problems[:20]} if row["undrawn"] else None
        row["time"] = time.strftime("%Y-%m-%d %H:%M")
        row["studio_pool"] = args.studio_pool
        row["pool_wait_s"] = waited
        row["fill_delay_s"] = args.fill_delay
        rows[(n, args.studio_pool, args.fill_delay)] = row
        lat = row["latency"].get("kernel-heatmap", {})
        print(f"N={n:2d}: drawn {row['drawn']}/{n}, moves complete {row['moves_complete']}/{row['moves']}, "
              f"heatmap p50 {lat.get('p50_s', float('nan')):.2f} s p95 {lat.get('p95_s', float('nan')):.2f} s, "
              f"worst p95 {row['worst_p95_s'] or float('nan'):.2f} s, kernel RSS median "
              f"{row['kernel_rss_gib']['median']:.2f} GiB, total {row['peak_total_rss_gib']:.1f} GiB, "
              f"left {row['kernels_left']} (pool {row['pool']})", flush=True)
        result = {"what": "N visitors at once on one server: each opens the Studio, then presses ArrowRight on "
                          "fc1's sparsity slider; latency from key press to each changed view in Chromium",
                  "model": "lenet5", "layer": LAYER, "moves_per_session": args.moves,
                  "rows": [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1] or 1, k[2] or 0))],
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                             f"{psutil.virtual_memory().total / GIB:.0f} GiB"}
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")  # after every N: a long run keeps what it measured


if __name__ == "__main__":
    main()
