"""The TensorFlow Lite Micro side of ``micro_check``, run as a script in a child process (never imported by the
package, so the child loads numpy and tflite-micro only, not TensorFlow).

Why a child: TFLM does not always fail cleanly when a tensor arena is too small. On MobileNet v1 (alpha 1.0, 32x32,
8-bit, 3.5 MB), a 100,000-byte arena ends in "Failed to populate a temp TfLiteTensor struct from flatbuffer data!"
and then a null-pointer dereference in tflite-micro's ``_runtime.so`` (SIGSEGV), while 95,000 and 105,000 fail
with a RuntimeError as they should. In-process, the arena search took down the Studio's kernel or a search's Dask
worker. Here a crash ends only this process, and the parent (``micro.py``) goes on from what it printed.

    python micro_probe.py FOLDER LOW HIGH VERIFIED RESOLUTION MAX_IMAGES MAX_SECONDS

FOLDER holds model.tflite and images.npy (float32). The smallest arena is bisected in (LOW, HIGH] (HIGH is first
tried unless VERIFIED is 1), then up to MAX_IMAGES images are run one at a time (at most MAX_SECONDS). Each line
printed is one JSON object: {"trying": arena} before each attempt, {"probe": arena, "ok": bool, "error": text},
{"running": arena}, then {"arena": arena, "predictions": [...], "seconds_per_image": s}, or {"failed": text}.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time

import numpy as np


@contextlib.contextmanager
def _captured_stderr(into: list | None = None):
    """TFLM's C++ reports on fd 2 (failed allocations, missing operators); the arena search fails on purpose.
    Hide it, and hand its text to ``into`` for error messages."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (some embedded hosts): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as capture:
        try:
            os.dup2(capture.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if into is not None:
                capture.seek(0)
                into.append(capture.read(20000).decode(errors="replace"))


def _runtime():
    from tflite_micro.python.tflite_micro import runtime

    return runtime


def _feed(interp, image: np.ndarray) -> None:
    details = interp.get_input_details(0)
    x = np.asarray(image, dtype=np.float32)[None]
    if details["dtype"] in (np.int8, np.uint8):
        q = details["quantization_parameters"]
        scale, zero = float(q["scales"][0]), int(q["zero_points"][0])
        info = np.iinfo(details["dtype"])
        x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(details["dtype"])
    interp.set_input(x, 0)


def _output(interp) -> np.ndarray:
    out = np.asarray(interp.get_output(0), dtype=np.float32)
    details = interp.get_output_details(0)
    if details["dtype"] in (np.int8, np.uint8):
        q = details["quantization_parameters"]
        out = (out - float(q["zero_points"][0])) * float(q["scales"][0])
    return out.reshape(-1)


def runs_with(data: bytes, arena: int, image: np.ndarray, errors: list | None = None):
    """The interpreter if the model allocates and runs one image in ``arena`` bytes, else None (what TFLM said
    goes to ``errors``). In this process: it may crash it (see the module's docstring)."""
    said: list = []
    try:
        with _captured_stderr(said):
            interp = _runtime().Interpreter.from_bytes(data, arena_size=int(arena))
            _feed(interp, image)
            interp.invoke()
        return interp
    except Exception as exc:  # noqa: BLE001 (pybind errors of any kind: the model does not run here)
        if errors is not None:
            errors.append(" ".join(f"{type(exc).__name__}: {exc} {''.join(said)}".split()))
        return None


def _say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: list[str]) -> int:
    folder, low, high, verified, resolution, max_images, max_seconds = argv
    low, high, resolution, max_images = int(low), int(high), int(resolution), int(max_images)
    with open(os.path.join(folder, "model.tflite"), "rb") as f:
        data = f.read()
    images = np.load(os.path.join(folder, "images.npy"), allow_pickle=False)
    interp = None
    if verified != "1":
        errors: list = []
        _say(trying=high)
        interp = runs_with(data, high, images[0], errors)
        _say(probe=high, ok=interp is not None, error=errors[0][:400] if errors else None)
        if interp is None:
            return 0
    while high - low > resolution:
        middle = (low + high) // 2
        _say(trying=middle)
        smaller = runs_with(data, middle, images[0])
        _say(probe=middle, ok=smaller is not None)
        if smaller is not None:
            high, interp = middle, smaller
        else:
            low = middle
    if interp is None:  # verified before a crash: build it again in the arena found
        _say(trying=high)
        interp = runs_with(data, high, images[0])
        if interp is None:
            _say(failed=f"TensorFlow Lite Micro no longer runs the model in the {high:,}-byte arena it ran in before")
            return 0
    if max_images <= 0:  # the arena only
        _say(arena=high, predictions=[], seconds_per_image=None)
        return 0
    _say(running=high)
    predictions, started = [], time.perf_counter()
    try:
        for image in images[:max_images]:
            if predictions and time.perf_counter() - started > float(max_seconds):
                break
            _feed(interp, image)
            interp.invoke()
            predictions.append(int(_output(interp).argmax()))
    except Exception as exc:  # noqa: BLE001 (pybind errors of any kind)
        _say(failed=f"TensorFlow Lite Micro failed on image {len(predictions)}: "
                    f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return 0
    _say(arena=high, predictions=predictions, seconds_per_image=(time.perf_counter() - started) / len(predictions))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
