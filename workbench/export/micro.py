"""TensorFlow Lite Micro: run an exported model on the microcontroller interpreter (the ``tflite-micro`` package).

A ``.tflite`` that LiteRT runs may still fail on a microcontroller: an operator TFLM lacks, a tensor type
its kernels do not take, or an arena too small. :func:`micro_check` runs the artifact on TFLM's own
interpreter (its reference kernels, the code that ships in firmware), finds the smallest tensor arena it
needs, and measures its accuracy on the same images as LiteRT, with how often the two agree.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

import numpy as np

from workbench.export.tflite import predict_tflite

MICRO_IMAGES = 200  # images run on TFLM per check (one at a time, as on a device)
MICRO_SECONDS = 10.0  # ... or fewer, when a large model would take longer than this
ARENA_RESOLUTION = 256  # bytes: the arena search stops when it knows the size to this much


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


def _runs_with(data: bytes, arena: int, image: np.ndarray, errors: list | None = None):
    """The interpreter if the model allocates and runs one image in ``arena`` bytes, else None (what TFLM said
    goes to ``errors``)."""
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


def _smallest_arena(data: bytes, image: np.ndarray, errors: list | None = None):
    """(arena, interpreter): the smallest tensor arena (to ``ARENA_RESOLUTION`` bytes) in which TFLM runs the
    model, with the interpreter that ran in it; (None, None) if it never runs, even with an arena of 10× the
    model and at least 1 MB (what TFLM said goes to ``errors``)."""
    high = max(10 * len(data), 1 << 20)
    interp = _runs_with(data, high, image, errors)
    if interp is None:
        return None, None
    low = 0
    while high - low > ARENA_RESOLUTION:
        middle = (low + high) // 2
        smaller = _runs_with(data, middle, image)
        if smaller is not None:
            high, interp = middle, smaller
        else:
            low = middle
    return int(high), interp


def micro_check(data: bytes, images: np.ndarray, labels: np.ndarray, split: str = "validation",
                litert: np.ndarray | None = None) -> dict:
    """Run ``data`` on TensorFlow Lite Micro: does it run, in how large an arena, and how accurately.

    ``litert``: LiteRT's predicted classes for ``images``, when the caller has them (else they are computed).

    Returns {'runs': bool, 'arena_bytes', 'accuracy', 'litert_accuracy', 'agreement', 'images', 'split',
    'seconds_per_image'} when it runs, or {'runs': False, 'reason': what TFLM said} when it does not.
    """
    try:
        _runtime()
    except ImportError as exc:
        return {"runs": False, "reason": f"tflite-micro is not installed ({exc}); pip install tflite-micro"}
    images, labels = np.asarray(images), np.asarray(labels)
    if not len(images):
        return {"runs": False, "reason": "no images to run"}
    errors: list = []
    arena, interp = _smallest_arena(data, images[0], errors)
    if arena is None:
        return {"runs": False, "reason": f"TensorFlow Lite Micro cannot run this model: {errors[0][:400]}"}
    predictions, started = [], time.perf_counter()
    try:
        for image in images[:MICRO_IMAGES]:
            if predictions and time.perf_counter() - started > MICRO_SECONDS:
                break
            _feed(interp, image)
            interp.invoke()
            predictions.append(int(_output(interp).argmax()))
    except Exception as exc:  # noqa: BLE001 (pybind errors of any kind)
        return {"runs": False, "reason": f"TensorFlow Lite Micro failed on image {len(predictions)}: "
                                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
    seconds = (time.perf_counter() - started) / len(predictions)
    n = len(predictions)
    micro = np.asarray(predictions)
    litert = (predict_tflite(data, images[:n]).argmax(axis=-1) if litert is None else np.asarray(litert)[:n])
    return {"runs": True, "arena_bytes": arena, "images": n, "split": split,
            "accuracy": float((micro == labels[:n]).mean()), "litert_accuracy": float((litert == labels[:n]).mean()),
            "agreement": float((micro == litert).mean()), "seconds_per_image": float(seconds)}


def micro_text(check: dict) -> str:
    """One line for people: what TFLM did with the model."""
    if not check.get("runs"):
        return check.get("reason", "not run on TensorFlow Lite Micro")
    return (f"TensorFlow Lite Micro runs it in a {check['arena_bytes']:,} B tensor arena: {check['accuracy']:.1%} on "
            f"{check['images']} {check['split']} images (LiteRT {check['litert_accuracy']:.1%}; the two agree on "
            f"{check['agreement']:.1%}), {1000 * check['seconds_per_image']:.1f} ms per image here")
