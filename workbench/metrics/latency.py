"""How fast a .tflite artifact runs here: batch-1 latency and batch-64 throughput with LiteRT.

The thread count is fixed and stated in every result (a phone or microcontroller runs one model on a
core or two; a free-running default would measure this machine's load instead). Latency is taken over
``runs`` invocations after ``warmup`` ones, as wall time of ``invoke()`` alone, the input already set.
"""

from __future__ import annotations

import time

import numpy as np

from workbench.errors import ConfigError, ModelError
from workbench.export.tflite import as_input, interpreter

DEFAULT_THREADS = 1
DEFAULT_RUNS = 200
MAX_RUNS = 100_000


def _prepared(source, images: np.ndarray, batch: int, threads: int, delegates: bool = True):
    images = np.asarray(images, dtype=np.float32)
    if images.ndim < 2 or len(images) == 0:
        raise ModelError(f"images must be a non-empty batch (NHWC, or N x features). Received shape={images.shape}")
    interp = interpreter(source, threads=threads, delegates=delegates)
    inp = interp.get_input_details()[0]
    expected = tuple(int(d) for d in inp["shape"][1:])
    if tuple(images.shape[1:]) != expected:
        raise ModelError(f"Images have shape {images.shape[1:]}; this .tflite model expects {expected}.")
    interp.resize_tensor_input(inp["index"], [batch, *expected])
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = images[np.arange(batch) % len(images)]
    interp.set_tensor(inp["index"], as_input(x, inp))
    return interp


def _check(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}. Received: {name}={value!r}")
    return int(value)


def latency(source, images: np.ndarray, threads: int = DEFAULT_THREADS, runs: int = DEFAULT_RUNS,
            warmup: int = 20, batch: int = 1, delegates: bool = True) -> dict:
    """Per-invocation wall time at ``batch``: {'batch', 'threads', 'runs', 'p50_ms', 'p95_ms', 'mean_ms'}.
    ``delegates=False``: LiteRT's built-in kernels, without its default XNNPACK delegate."""
    threads, runs = _check("threads", threads, 1, 64), _check("runs", runs, 1, MAX_RUNS)
    warmup, batch = _check("warmup", warmup, 0, MAX_RUNS), _check("batch", batch, 1, 4096)
    interp = _prepared(source, images, batch, threads, delegates)
    for _ in range(warmup):
        interp.invoke()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        interp.invoke()
        times[i] = time.perf_counter() - start
    return {"batch": batch, "threads": threads, "runs": runs, "p50_ms": float(np.percentile(times, 50) * 1e3),
            "p95_ms": float(np.percentile(times, 95) * 1e3), "mean_ms": float(times.mean() * 1e3)}


def throughput(source, images: np.ndarray, threads: int = DEFAULT_THREADS, batch: int = 64,
               seconds: float = 2.0, min_runs: int = 5) -> dict:
    """Images per second at ``batch`` over at least ``seconds`` and ``min_runs`` invocations after one warm-up:
    {'batch', 'threads', 'runs', 'images_per_s'}."""
    threads, batch = _check("threads", threads, 1, 64), _check("batch", batch, 1, 4096)
    if not 0 < seconds <= 600:
        raise ConfigError(f"seconds must be in (0, 600]. Received: seconds={seconds!r}")
    interp = _prepared(source, images, batch, threads)
    interp.invoke()
    count, start = 0, time.perf_counter()
    while count < min_runs or time.perf_counter() - start < seconds:
        interp.invoke()
        count += 1
    return {"batch": batch, "threads": threads, "runs": count,
            "images_per_s": count * batch / (time.perf_counter() - start)}


def speed_report(source, images: np.ndarray, threads: int = DEFAULT_THREADS, runs: int = DEFAULT_RUNS,
                 seconds: float = 2.0) -> dict:
    """Batch-1 latency (p50, p95 over ``runs``) and batch-64 throughput, with the same thread count."""
    return {"threads": threads, "batch1": latency(source, images, threads, runs),
            "batch64": throughput(source, images, threads, seconds=seconds)}


def speed_text(speed: dict) -> str:
    """One line for a report or the Studio from ``stages.measure_speed``'s dict."""
    i8, f32, ratio = speed["int8"], speed["fp32"], speed["int8_over_fp32"]
    return (f"int8 ({speed['target']}) batch 1: p50 {i8['batch1']['p50_ms']:.3g} ms, p95 {i8['batch1']['p95_ms']:.3g} ms; "
            f"batch 64: {i8['batch64']['images_per_s']:,.0f} images/s. fp32: p50 {f32['batch1']['p50_ms']:.3g} ms, "
            f"{f32['batch64']['images_per_s']:,.0f} images/s. int8 is {ratio['batch1_p50']:.2f}x / "
            f"{ratio['batch64']:.2f}x as fast ({speed['threads']} thread{'s' if speed['threads'] != 1 else ''}, "
            f"{i8['batch1']['runs']} runs)")
