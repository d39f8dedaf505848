"""TensorFlow Lite Micro: run an exported model on the microcontroller interpreter (the ``tflite-micro`` package).

A ``.tflite`` that LiteRT runs may still fail on a microcontroller: an operator TFLM lacks, a tensor type
its kernels do not take, or an arena too small. :func:`micro_check` runs the artifact on TFLM's own
interpreter (its reference kernels, the code that ships in firmware), finds the smallest tensor arena it
needs, and measures its accuracy on the same images as LiteRT, with how often the two agree.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import signal
import subprocess
import sys
import tempfile

import numpy as np

from workbench.export.tflite import predict_tflite

MICRO_IMAGES = 200  # images run on TFLM per check (one at a time, as on a device)
MICRO_SECONDS = 10.0  # ... or fewer, when a large model would take longer than this
ARENA_RESOLUTION = 256  # bytes: the arena search stops when it knows the size to this much


PROBE = pathlib.Path(__file__).with_name("micro_probe.py")  # TFLM runs there, in a child process (why: its docstring)
MAX_CRASHES = 6  # arenas at which TFLM may crash the child before the check gives up
PROBE_TIMEOUT = 180.0  # seconds for one child


def _probe(folder: str, low: int, high: int, verified: bool, max_images: int):
    """Run micro_probe.py once on ``folder`` (model.tflite, images.npy); returns (the JSON lines it printed, how it
    ended: None if it exited, else a text)."""
    # -I: not the script's folder on sys.path (workbench/export/tflite.py would shadow a module named tflite)
    argv = [sys.executable, "-I", str(PROBE), folder, str(low), str(high), "1" if verified else "0",
            str(ARENA_RESOLUTION), str(max_images), str(MICRO_SECONDS)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        return _lines(out.decode(errors="replace") if isinstance(out, bytes) else out), \
            f"did not finish in {PROBE_TIMEOUT:.0f} s"
    if proc.returncode == 0:
        return _lines(proc.stdout), None
    how = (f"crashed ({signal.Signals(-proc.returncode).name})" if proc.returncode < 0
           else f"exited with status {proc.returncode}: {' '.join(proc.stderr.split())[-300:]}")
    return _lines(proc.stdout), how


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def smallest_arena(data: bytes, images: np.ndarray, max_images: int = 0) -> dict:
    """The smallest tensor arena (to ``ARENA_RESOLUTION`` bytes) in which TFLM runs the model, bisected from 10x the
    model (at least 1 MB), in a child process; an arena at which TFLM crashed counts as too small, and the search
    goes on in a new child. Returns {'arena', 'predictions', 'seconds_per_image', 'crashes'} (predictions of the
    first ``max_images`` images, one at a time) or {'reason'} when it never runs."""
    with tempfile.TemporaryDirectory() as folder:  # written once, for every child
        (pathlib.Path(folder) / "model.tflite").write_bytes(data)
        np.save(pathlib.Path(folder) / "images.npy", np.asarray(images[:max(1, max_images)], dtype=np.float32),
                allow_pickle=False)
        return _bisect(folder, max(10 * len(data), 1 << 20), max_images)


def _bisect(folder: str, high: int, max_images: int) -> dict:
    low, verified, crashes = 0, False, []
    for _ in range(MAX_CRASHES + 1):
        lines, ended = _probe(folder, low, high, verified, max_images)
        trying = None
        for line in lines:
            if "trying" in line:
                trying = line["trying"]
            elif "probe" in line:
                trying = None
                if line["ok"]:
                    high, verified = line["probe"], True
                elif line["probe"] == high and not verified:
                    return {"reason": f"TensorFlow Lite Micro cannot run this model: {line.get('error') or ''}"[:500],
                            "crashes": crashes}
                else:
                    low = line["probe"]
            elif "failed" in line:
                return {"reason": line["failed"], "crashes": crashes}
            elif "arena" in line:
                return {**line, "crashes": crashes}
        if trying is None or trying == high or ended is None or "running" in (lines[-1] if lines else {}):
            what = "while running the images" if lines and "running" in lines[-1] else f"in a {trying or high:,}-byte arena"
            return {"reason": f"TensorFlow Lite Micro {ended or 'stopped early'} {what}", "crashes": crashes}
        crashes.append({"arena": trying, "how": ended})  # TFLM crashed trying a smaller arena: count it too small
        low = trying
    return {"reason": f"TensorFlow Lite Micro crashed at {len(crashes)} arena size{'s' * (len(crashes) > 1)} "
                      f"({', '.join(str(c['arena']) for c in crashes)}); the check gave up", "crashes": crashes}


def micro_check(data: bytes, images: np.ndarray, labels: np.ndarray, split: str = "validation",
                litert: np.ndarray | None = None) -> dict:
    """Run ``data`` on TensorFlow Lite Micro: does it run, in how large an arena, and how accurately.

    ``litert``: LiteRT's predicted classes for ``images``, when the caller has them (else they are computed).
    Returns {'runs': bool, 'arena_bytes', 'accuracy', 'litert_accuracy', 'agreement', 'images', 'split',
    'seconds_per_image'} when it runs, or {'runs': False, 'reason': what TFLM said} when it does not; 'crashes'
    lists the arenas at which TFLM crashed its process (counted too small) when there were any.
    """
    if importlib.util.find_spec("tflite_micro") is None:
        return {"runs": False, "reason": "tflite-micro is not installed; pip install tflite-micro"}
    images, labels = np.asarray(images), np.asarray(labels)
    if not len(images):
        return {"runs": False, "reason": "no images to run"}
    found = smallest_arena(data, images[:MICRO_IMAGES], max_images=MICRO_IMAGES)
    extra = {"crashes": found["crashes"]} if found.get("crashes") else {}
    if "arena" not in found:
        return {"runs": False, "reason": found["reason"], **extra}
    micro = np.asarray(found["predictions"])
    n = len(micro)
    litert = (predict_tflite(data, images[:n]).argmax(axis=-1) if litert is None else np.asarray(litert)[:n])
    return {"runs": True, "arena_bytes": int(found["arena"]), "images": n, "split": split,
            "accuracy": float((micro == labels[:n]).mean()), "litert_accuracy": float((litert == labels[:n]).mean()),
            "agreement": float((micro == litert).mean()), "seconds_per_image": float(found["seconds_per_image"]),
            **extra}


def micro_text(check: dict) -> str:
    """One line for people: what TFLM did with the model."""
    if not check.get("runs"):
        return check.get("reason", "not run on TensorFlow Lite Micro")
    return (f"TensorFlow Lite Micro runs it in a {check['arena_bytes']:,} B tensor arena: {check['accuracy']:.1%} on "
            f"{check['images']} {check['split']} images (LiteRT {check['litert_accuracy']:.1%}; the two agree on "
            f"{check['agreement']:.1%}), {1000 * check['seconds_per_image']:.1f} ms per image here")
