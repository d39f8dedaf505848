"""Why int8 is, or is not, faster than fp32 here: every weight layer of a zoo model alone, and the whole model,
as fp32 and full-integer int8 .tflite, timed side by side with LiteRT on one thread.

    .venv/bin/python bench/op_speed.py [--model lenet5] [--runs 200]

Each Conv2D / DepthwiseConv2D / Dense layer becomes a one-layer model with the layer's own input shape and
settings; it is converted to fp32 and to int8 (post-training, per-channel, calibrated on uniform [0, 1) inputs:
speed does not depend on the values) and timed at batch 1 and batch 64 (p50 of ``runs`` and ``runs // 4``
invocations after warm-up), with LiteRT's default XNNPACK delegate and with LiteRT's built-in kernels alone.
The CPU flags that decide int8 speed are recorded: without 8-bit dot-product instructions (AVX-512 VNNI or
AVX-VNNI on x86, dot-product on Arm) an int8 multiply-add costs about what an fp32 one does. Writes
bench/results/op_speed_<model>.json; bench/tables.py puts it in RESULTS.md. Run it alone: these are wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
WEIGHT_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense")
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp")  # asimddp: Arm's dot product


def cpu_flags() -> list[str]:
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    words = set(text.split())
    return [flag for flag in INT8_FLAGS if flag in words]


def one_layer_models(model) -> list[tuple[str, object]]:
    """(name, a model of just that layer, fresh weights) for each weight layer, in order."""
    import keras

    out = []
    for layer in model.layers:
        if type(layer).__name__ in WEIGHT_LAYERS:
            inputs = keras.Input(tuple(layer.input.shape[1:]))
            out.append((layer.name, keras.Model(inputs, type(layer).from_config(layer.get_config())(inputs))))
    return out


def timed(model, runs: int, rng) -> dict:
    """fp32 and int8 of one model: p50 ms at batch 1 and 64, with and without XNNPACK, and the MACs per image."""
    from workbench.export.tflite import convert_float, convert_int8
    from workbench.metrics.latency import latency

    x = rng.random((64, *model.inputs[0].shape[1:])).astype(np.float32)
    artifacts = {"fp32": convert_float(model), "int8": convert_int8(model, x[:32], samples=32)}
    out = {}
    for kind, data in artifacts.items():
        for delegates, engine in ((True, "xnnpack"), (False, "builtin")):
            for batch, n in ((1, runs), (64, max(runs // 4, 5))):
                p50 = latency(data, x, threads=1, runs=n, warmup=5, batch=batch, delegates=delegates)["p50_ms"]
                out[f"{kind}_{engine}_b{batch}_ms"] = p50
    for engine in ("xnnpack", "builtin"):
        for batch in (1, 64):
            out[f"int8_over_fp32_{engine}_b{batch}"] = out[f"fp32_{engine}_b{batch}_ms"] / out[f"int8_{engine}_b{batch}_ms"]
    return out


def macs(layer) -> int:
    """Multiply-adds per image of one weight layer (output elements x the inputs each one sums)."""
    kernel = layer.get_weights()[0]
    out = int(np.prod(layer.output.shape[1:]))
    if type(layer).__name__ == "DepthwiseConv2D":
        return out * int(np.prod(kernel.shape[:2]))
    return out * int(np.prod(kernel.shape[:-1]))


def measure(model_name: str, runs: int) -> dict:
    from workbench.models import build_model

    rng = np.random.default_rng(0)
    model = build_model(model_name)
    rows = []
    for name, one in one_layer_models(model):
        layer = one.layers[-1]
        rows.append({"layer": name, "type": type(layer).__name__, "input": list(layer.input.shape[1:]),
                     "output": list(layer.output.shape[1:]), "macs": macs(layer), **timed(one, runs, rng)})
        print(f"{name}: int8/fp32 speed-up (XNNPACK) batch 1 {rows[-1]['int8_over_fp32_xnnpack_b1']:.2f}x, "
              f"batch 64 {rows[-1]['int8_over_fp32_xnnpack_b64']:.2f}x", flush=True)
    whole = {"layer": "whole model", "type": "", "input": list(model.inputs[0].shape[1:]), "output": [],
             "macs": sum(r["macs"] for r in rows), **timed(model, runs, rng)}
    return {"model": model_name, "layers": rows + [whole], "threads": 1, "runs_batch1": runs,
            "cpu_flags": cpu_flags(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "time": time.strftime("%Y-%m-%d %H:%M")}


def op_speed_lines(result: dict | None) -> list[str]:
    """RESULTS.md's table of bench/results/op_speed_<model>.json."""
    if not result:
        return []
    flags = ", ".join(result["cpu_flags"]) or "none of " + ", ".join(INT8_FLAGS)
    lines = ["", f"Each layer of {result['model']} alone, fp32 and int8 `.tflite` timed side by side "
                 f"(bench/op_speed.py, {result['threads']} thread, {result['time']}; CPU flags for int8: {flags}). "
                 "Speed-up = fp32 time / int8 time, p50; above 1, int8 is faster:", "",
             "| layer | input → output | MACs per image | int8 speed-up, XNNPACK, batch 1 / 64 | "
             "int8 speed-up, built-in kernels, batch 1 / 64 | batch 64, XNNPACK: fp32 / int8 (ms) |", "|---|---|---|---|---|---|"]
    for r in result["layers"]:
        shapes = "×".join(map(str, r["input"])) + (" → " + "×".join(map(str, r["output"])) if r["output"] else "")
        lines.append(f"| {r['layer']} | {shapes} | {r['macs']:,} | {r['int8_over_fp32_xnnpack_b1']:.2f}× / "
                     f"{r['int8_over_fp32_xnnpack_b64']:.2f}× | {r['int8_over_fp32_builtin_b1']:.2f}× / "
                     f"{r['int8_over_fp32_builtin_b64']:.2f}× | {r['fp32_xnnpack_b64_ms']:.3g} / {r['int8_xnnpack_b64_ms']:.3g} |")
    return lines


def load(model_name: str = "lenet5") -> dict | None:
    path = RESULTS / f"op_speed_{model_name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    result = measure(args.model, args.runs)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"op_speed_{args.model}.json").write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(op_speed_lines(result)))


if __name__ == "__main__":
    main()
