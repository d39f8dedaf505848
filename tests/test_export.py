"""int8 export: pruned zeros inside the .tflite, accuracy against the QAT model, int8 I/O, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.config import PruneConfig, QuantConfig, TrainConfig
from workbench.errors import ConfigError, ModelError
from workbench.export import evaluate_tflite, export_tflite, load_tflite_bytes, predict_tflite, to_c_array
from workbench.metrics.tflite_tensors import weight_tensors
from workbench.pruning.api import get_masks, prune_model
from workbench.quantization.api import quantize_model
from workbench.train import accuracy, fit

# Keras kernel layout -> TFLite layout: conv HWIO -> OHWI, dense (in, out) -> (out, in).
TO_TFLITE = {4: (3, 0, 1, 2), 2: (1, 0)}


@pytest.fixture(scope="module")
def exported(trained_lenet, small_mnist, tmp_path_factory):
    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.85))
    qat, _ = quantize_model(pruned, QuantConfig(layer_weight_bits={"fc1": 4}),
                            calibration_data=small_mnist.x_train[:512])
    fit(qat, (small_mnist.x_train[:1024], small_mnist.y_train[:1024]), TrainConfig(epochs=1, learning_rate=1e-4))
    path = tmp_path_factory.mktemp("export") / "m.tflite"
    data, report = export_tflite(qat, small_mnist.x_train[:200], path=path)
    return {"pruned": pruned, "qat": qat, "data": data, "report": report, "path": path}


def test_pruned_weights_are_exactly_zero_in_the_int8_tensors(exported):
    masks = get_masks(exported["pruned"])
    tensors = weight_tensors(exported["data"])
    assert all(t.values.dtype == np.int8 for t in tensors)
    matched = 0
    for name, mask in masks.items():
        expected_shape = tuple(np.transpose(mask, TO_TFLITE[mask.ndim]).shape)
        found = [t for t in tensors if t.shape == expected_shape]
        assert len(found) == 1, f"no unique int8 tensor of shape {expected_shape} for {name}"
        stored = found[0].values
        mask_t = np.transpose(mask, TO_TFLITE[mask.ndim])
        assert np.all(stored[mask_t == 0] == 0), f"{name}: a pruned weight is non-zero in the .tflite"
        assert np.count_nonzero(stored) <= np.count_nonzero(mask_t)
        matched += 1
    assert matched == 4
    fc1 = [t for t in tensors if t.shape == (500, 800)][0]
    assert np.unique(fc1.values).size <= 15, "4-bit fc1 must use at most 15 levels"
    assert fc1.packed_int4 and fc1.nbytes == 500 * 800 // 2, "4-bit weights are stored packed, two per byte"


def test_int8_artifact_tracks_the_qat_model(exported, small_mnist):
    x, y = small_mnist.x_test, small_mnist.y_test
    acc_int8 = evaluate_tflite(exported["path"], x, y)
    acc_qat = accuracy(exported["qat"], x, y)
    assert abs(acc_int8 - acc_qat) <= 0.01
    assert acc_int8 > 0.9
    agree = (predict_tflite(exported["data"], x[:300]).argmax(1) == exported["qat"](x[:300]).numpy().argmax(1))
    assert agree.mean() > 0.97
    assert exported["report"].tflite_bytes == len(exported["data"]) == exported["path"].stat().st_size
    assert exported["report"].gzip_bytes < exported["report"].tflite_bytes


def test_int8_input_and_output_option(exported, small_mnist):
    data, report = export_tflite(exported["qat"], small_mnist.x_train[:100], int8_io=True)
    from workbench.export import interpreter

    interp = interpreter(data)
    assert interp.get_input_details()[0]["dtype"] == np.int8 and interp.get_output_details()[0]["dtype"] == np.int8
    assert report.int8_io
    acc = evaluate_tflite(data, small_mnist.x_test, small_mnist.y_test)
    assert abs(acc - evaluate_tflite(exported["data"], small_mnist.x_test, small_mnist.y_test)) <= 0.01


def test_bad_tflite_files_are_refused(tmp_path, small_mnist):
    with pytest.raises(ModelError, match="Not a TFLite model"):
        load_tflite_bytes(b"hello world, not a model")
    with pytest.raises(ModelError, match="No such file"):
        evaluate_tflite(tmp_path / "missing.tflite", small_mnist.x_test, small_mnist.y_test)


def test_export_refuses_wrong_representative_shape(exported):
    with pytest.raises(ModelError, match="expects"):
        export_tflite(exported["qat"], np.zeros((4, 32, 32, 1), np.float32))


def test_c_array_round_trips(exported):
    source = to_c_array(exported["data"], "g_lenet")
    body = source.split("{", 1)[1].split("}", 1)[0]
    values = bytes(int(v, 16) for v in body.replace("\n", "").split(",") if v.strip())
    assert values == exported["data"] and f"g_lenet_len = {len(exported['data'])}" in source
    with pytest.raises(ModelError, match="C identifier"):
        to_c_array(b"x", "not valid")


MAIN_CC = r"""
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>
#include "model_data.h"

// Links against model_data.cc through the header only, as a TFLite Micro application does.
int main(int argc, char** argv) {
  FILE* f = std::fopen(argv[1], "rb");
  if (!f) return 2;
  std::vector<unsigned char> want;
  int c;
  while ((c = std::fgetc(f)) != EOF) want.push_back(static_cast<unsigned char>(c));
  std::fclose(f);
  if (want.size() != g_lenet_len) { std::printf("length %u != %zu\n", g_lenet_len, want.size()); return 3; }
  if (std::memcmp(want.data(), g_lenet, g_lenet_len) != 0) { std::printf("bytes differ\n"); return 4; }
  if (reinterpret_cast<std::uintptr_t>(g_lenet) % 16 != 0) { std::printf("not 16-byte aligned\n"); return 5; }
  std::printf("ok %u\n", g_lenet_len);
  return 0;
}
"""


def test_c_array_and_header_compile_link_and_match_the_tflite(exported, tmp_path):
    """The array has external linkage: a separate main.cc sees it through the header (g++ compiles and links)."""
    import shutil
    import subprocess

    from workbench.export import c_header

    if shutil.which("g++") is None:
        pytest.fail("g++ is missing (Debian's g++ package): it checks that the C array links")
    (tmp_path / "model_data.cc").write_text(to_c_array(exported["data"], "g_lenet"))
    (tmp_path / "model_data.h").write_text(c_header(exported["data"], "g_lenet"))
    (tmp_path / "main.cc").write_text(MAIN_CC)
    (tmp_path / "model.tflite").write_bytes(exported["data"])
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-O1", "main.cc", "model_data.cc", "-o", "check"],
                   cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run([str(tmp_path / "check"), str(tmp_path / "model.tflite")], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == f"ok {len(exported['data'])}", run.stdout
    (tmp_path / "model.tflite").write_bytes(exported["data"][:-1] + bytes([exported["data"][-1] ^ 0xFF]))  # can fail
    assert subprocess.run([str(tmp_path / "check"), str(tmp_path / "model.tflite")]).returncode == 4


def test_tflite_micro_runs_the_artifact_in_the_smallest_arena_and_agrees_with_litert(exported, small_mnist):
    """The pruned, QAT, partly packed-INT4 LeNet-5 runs on TFLM's reference kernels, as on a device."""
    from workbench.export.micro import ARENA_RESOLUTION, micro_check, micro_text
    from workbench.export.micro_probe import runs_with as _runs_with

    x, y = small_mnist.x_test[:100], small_mnist.y_test[:100]
    check = micro_check(exported["data"], x, y, split="test")
    assert check["runs"] and check["images"] == 100 and check["split"] == "test"
    arena = check["arena_bytes"]
    assert 1024 < arena < (1 << 20)
    assert _runs_with(exported["data"], arena, x[0]) is not None
    assert _runs_with(exported["data"], arena - ARENA_RESOLUTION, x[0]) is None  # the smallest, to the resolution
    litert = predict_tflite(exported["data"], x).argmax(-1)
    assert check["litert_accuracy"] == pytest.approx(float((litert == y).mean()))
    assert check["agreement"] >= 0.97
    assert abs(check["accuracy"] - check["litert_accuracy"]) <= 1 - check["agreement"] + 1e-9
    assert f"{arena:,} B tensor arena" in micro_text(check)


def test_an_arena_at_which_tflite_micro_crashes_counts_as_too_small_and_the_check_goes_on(exported, small_mnist,
                                                                                          tmp_path, monkeypatch):
    """TFLM segfaults at some arena sizes (MobileNet v1, 8-bit: 100,000 bytes) instead of failing cleanly; the check
    runs it in a child process. Here a probe that crashes (SIGSEGV) at the bisection's first arena stands in."""
    from workbench.export import micro
    from workbench.export.micro_probe import runs_with

    first = max(10 * len(exported["data"]), 1 << 20) // 2  # the first arena bisected
    crashing = tmp_path / "crashing_probe.py"
    crashing.write_text(
        "import importlib.util, os, signal, sys\n"
        f"spec = importlib.util.spec_from_file_location('probe', {str(micro.PROBE)!r})\n"
        "probe = importlib.util.module_from_spec(spec); spec.loader.exec_module(probe)\n"
        "runs_with = probe.runs_with\n"
        "def crashing(data, arena, image, errors=None):\n"
        f"    if arena == {first}: os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    return runs_with(data, arena, image, errors)\n"
        "probe.runs_with = crashing\n"
        "sys.exit(probe.main(sys.argv[1:]))\n")
    monkeypatch.setattr(micro, "PROBE", crashing)
    x, y = small_mnist.x_test[:20], small_mnist.y_test[:20]
    check = micro.micro_check(exported["data"], x, y, split="test")
    assert check["runs"] and check["images"] == 20
    assert check["crashes"] == [{"arena": first, "how": "crashed (SIGSEGV)"}]  # counted too small: the search went on
    assert first < check["arena_bytes"] and runs_with(exported["data"], check["arena_bytes"], x[0]) is not None
    assert check["agreement"] >= 0.95
    monkeypatch.setattr(micro, "MAX_CRASHES", 0)  # one crash more than allowed: a clear answer, not a crash
    gave_up = micro.micro_check(exported["data"], x, y)
    assert gave_up["runs"] is False and gave_up["crashes"] == check["crashes"]
    assert gave_up["reason"].startswith("TensorFlow Lite Micro crashed at 1 arena size (")


def test_tflite_micro_says_what_it_cannot_run():
    import tensorflow as tf

    from workbench.export.micro import micro_check, micro_text

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def top3(x):
        return tf.math.top_k(x, k=3).values
    data = tf.lite.TFLiteConverter.from_concrete_functions([top3.get_concrete_function()], top3).convert()
    check = micro_check(data, np.zeros((2, 8), np.float32), np.zeros(2, int))
    assert check["runs"] is False and "TOPK_V2" in check["reason"]
    assert micro_text(check).startswith("TensorFlow Lite Micro cannot run this model")


def test_speed_target_stores_the_same_weight_values_as_int8_and_the_same_predictions(exported, small_mnist):
    """"size" packs fc1's 4-bit weights as INT4; "speed" stores each of the same values as int8 (grid.storage_factor),
    so the two artifacts dequantize to the same kernels and agree on the images."""
    speed, report = export_tflite(exported["qat"], small_mnist.x_train[:200], target="speed")
    assert report.target == "speed" and exported["report"].target == "size"
    by_shape = {}
    for artifact, data in (("size", exported["data"]), ("speed", speed)):
        for t in weight_tensors(data):
            by_shape.setdefault(t.shape, {})[artifact] = t
    assert len(by_shape) == 4 and all(len(pair) == 2 for pair in by_shape.values())
    fc1 = by_shape[(500, 800)]
    assert fc1["size"].packed_int4 and not fc1["speed"].packed_int4
    assert fc1["speed"].nbytes == 500 * 800 and fc1["speed"].values.dtype == np.int8
    assert not any(t.packed_int4 for t in weight_tensors(speed))
    for shape, pair in by_shape.items():
        values = {k: t.values.astype(np.float64) * np.reshape(t.scales, (-1,) + (1,) * (len(shape) - 1))
                  for k, t in pair.items()}
        assert np.allclose(values["size"], values["speed"], rtol=1e-5, atol=1e-9), shape
    # 4-bit values 7 levels either side of 0 become multiples of 18 of an int8 step of max|w|/126
    q = fc1["speed"].values.astype(int)
    assert np.all(q % 18 == 0) and np.abs(q).max() == 126
    x = small_mnist.x_test[:300]
    assert (predict_tflite(speed, x).argmax(-1) == predict_tflite(exported["data"], x).argmax(-1)).mean() >= 0.99
    qat_out = exported["qat"](x[:8], training=False).numpy()
    assert np.allclose(exported["qat"](x[:8], training=False).numpy(), qat_out)  # the model is left as it was
    assert not any(getattr(layer, "store_bits", None) for layer in exported["qat"].layers)


def test_unknown_export_target_is_refused(exported, small_mnist):
    with pytest.raises(ConfigError, match="target must be one of .*Received: target='fast'"):
        export_tflite(exported["qat"], small_mnist.x_train[:20], target="fast")


def test_latency_and_throughput_are_measured_with_the_stated_threads(exported, small_mnist):
    from workbench.metrics.latency import latency, speed_report, speed_text, throughput

    lat = latency(exported["data"], small_mnist.x_test[:4], threads=1, runs=30, warmup=2)
    assert lat["runs"] == 30 and lat["threads"] == 1 and 0 < lat["p50_ms"] <= lat["p95_ms"] < 1e4
    tp = throughput(exported["data"], small_mnist.x_test[:4], threads=2, batch=16, seconds=0.05, min_runs=3)
    assert tp["runs"] >= 3 and tp["batch"] == 16 and tp["threads"] == 2 and tp["images_per_s"] > 0
    report = speed_report(exported["data"], small_mnist.x_test[:4], threads=1, runs=10, seconds=0.05)
    assert report["batch1"]["runs"] == 10 and report["batch64"]["batch"] == 64
    text = speed_text({"threads": 1, "target": "speed", "int8": report, "fp32": report,
                       "int8_over_fp32": {"batch1_p50": 1.0, "batch64": 1.0}})
    assert "1 thread," in text and "int8 (speed)" in text
    for bad in ({"runs": 0}, {"threads": 0}, {"runs": 1.5}, {"batch": True}):
        with pytest.raises(ConfigError, match="Received"):
            latency(exported["data"], small_mnist.x_test[:4], **bad)
    with pytest.raises(ModelError, match="expects"):
        latency(exported["data"], np.zeros((2, 32, 32, 1), np.float32))
    with pytest.raises(ModelError, match="non-empty batch"):
        latency(exported["data"], np.zeros(4, np.float32))


def test_latency_can_run_without_litert_default_delegate(exported, small_mnist):
    """bench/op_speed.py compares XNNPACK (LiteRT's default delegate) with LiteRT's built-in kernels."""
    from workbench.export.tflite import interpreter
    from workbench.metrics.latency import latency

    def nodes(**kwargs):
        interp = interpreter(exported["data"], threads=1, **kwargs)
        interp.allocate_tensors()
        return [op["op_name"] for op in interp._get_ops_details()]

    assert "DELEGATE" in nodes() and "DELEGATE" not in nodes(delegates=False)
    assert "CONV_2D" in nodes(delegates=False)
    lat = latency(exported["data"], small_mnist.x_test[:4], threads=1, runs=5, warmup=1, delegates=False)
    assert lat["runs"] == 5 and lat["p50_ms"] > 0
