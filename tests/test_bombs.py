"""Small files that claim huge contents are refused fast and in bounded memory, by every loader and the Studio.

Each bomb goes to load_npz / load_user_model (bytes and path) and to the Studio's upload handler in one
subprocess; before each attempt the process's peak RSS is reset (/proc/self/clear_refs), and the
growth of the peak over the resident size before the attempt is what the test bounds.
"""

from __future__ import annotations

import io
import json
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest

pytestmark = pytest.mark.slow
MAX_SECONDS, MAX_RSS_GROWTH_MB = 2.0, 200.0


def _npy_header(dtype: str, shape: tuple) -> bytes:
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}".encode()
    text += b" " * (118 - len(text) % 64 if len(text) < 118 else 64 - (len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def _zip(members: dict, level: int = 1) -> bytes:
    """A zip whose members are bytes, or (header, n_zero_bytes) streamed without holding them in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, content in members.items():
            with zf.open(name, "w", force_zip64=True) as fh:
                if isinstance(content, bytes):
                    fh.write(content)
                    continue
                head, zeros = content
                fh.write(head)
                chunk = bytes(64 * 2**20)
                while zeros > 0:
                    fh.write(chunk[:min(zeros, len(chunk))])
                    zeros -= len(chunk)
    return buf.getvalue()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    labels = np.zeros(20, np.int64)
    images = np.zeros((20, 28, 28), np.uint8)
    one_label = labels.copy()
    one_label[3] = 200_000_000
    huge_label = labels.copy()
    huge_label[3] = 10**12
    keras_config = json.dumps({"class_name": "Sequential", "config": {}}).encode()
    corrupt = bytearray(_npz(images=np.arange(20 * 28 * 28, dtype=np.uint8).reshape(20, 28, 28) % 7, labels=labels))
    start = corrupt.find(b"images.npy") + 200  # inside the deflate stream of images.npy
    corrupt[start:start + 64] = bytes(range(64))
    files = {
        "npz_2gib_zeros.npz": _zip({"images.npy": (_npy_header("|u1", (2**31,)), 2**31),
                                    "labels.npy": _npy_header("<i8", (20,)) + labels.tobytes()}),
        "npz_label_2e8.npz": _npz(images=images, labels=one_label),
        "npz_label_1e12.npz": _npz(images=images, labels=huge_label),
        "npz_header_1e12_items.npz": _zip({"images.npy": _npy_header("<f4", (10**6, 1000, 1000)) + bytes(1024),
                                           "labels.npy": _npy_header("<i8", (20,)) + labels.tobytes()}),
        "npz_corrupt_deflate.npz": bytes(corrupt),
        "npz_is_a_single_npy.npz": _npy_header("<f4", (10**6, 1000, 1000)) + bytes(1024),
        "keras_config_1_5gib.keras": _zip({"metadata.json": b"{}", "config.json": (keras_config, 3 * 2**29),
                                           "model.weights.h5": b"\x89HDF"}),
        "keras_weights_2gib.keras": _zip({"metadata.json": b"{}", "config.json": keras_config,
                                          "model.weights.h5": (b"\x89HDF\r\n\x1a\n", 2**31)}),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


PROBE = r"""
import json, os, sys, time, pathlib
import workbench  # TensorFlow imported before measuring
from workbench.data.user import load_npz
from workbench.loading import load_user_model
from workbench.errors import WorkbenchError
from workbench.widgets import SessionState
from workbench.widgets.loading import SessionLoader

def rss_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

state = SessionState()
loader = SessionLoader(state)
results = []
for path in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    data = path.read_bytes()
    attempts = {"npz": [("load_npz(bytes)", lambda: load_npz(data)), ("load_npz(path)", lambda: load_npz(path))],
                "keras": [("load_user_model(bytes)", lambda: load_user_model(data)),
                          ("load_user_model(path)", lambda: load_user_model(path))]}[path.suffix[1:]]
    attempts.append(("Studio upload", lambda: loader.upload(({"name": path.name, "size": len(data), "content": data},))))
    for what, call in attempts:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak RSS
        before = rss_kb("VmRSS:")
        start = time.perf_counter()
        outcome, message = "accepted", ""
        try:
            value = call()
            if value is False:  # the Studio refuses by returning False and setting its error
                outcome, message = "refused", state.error
        except WorkbenchError as exc:
            outcome, message = "refused", str(exc)
        except BaseException as exc:
            outcome, message = f"raw {type(exc).__name__}", str(exc)[:300]
        results.append({"file": path.name, "loader": what, "outcome": outcome, "message": message[:2000],
                        "message_chars": len(message), "seconds": time.perf_counter() - start,
                        "rss_growth_mb": (rss_kb("VmHWM:") - before) / 1024, "studio_model": state.model_name})
print(json.dumps(results))
"""


def test_every_bomb_is_refused_fast_and_in_bounded_memory(bombs):
    out = subprocess.run([sys.executable, "-c", PROBE, str(bombs)], capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "WORKBENCH_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(results) == 3 * len(list(pathlib.Path(bombs).iterdir()))
    problems = [r for r in results if r["outcome"] != "refused" or r["seconds"] > MAX_SECONDS
                or r["rss_growth_mb"] > MAX_RSS_GROWTH_MB or r["message_chars"] > 400 or r["studio_model"]]
    assert problems == [], json.dumps(problems, indent=1)
    by_file = {}
    for r in results:
        by_file.setdefault(r["file"], []).append(r["message"])
    assert all("limit" in m for m in by_file["npz_2gib_zeros.npz"] + by_file["keras_config_1_5gib.keras"]
               + by_file["keras_weights_2gib.keras"] + by_file["npz_header_1e12_items.npz"])
    assert all("class indices" in m and "200000000" in m for m in by_file["npz_label_2e8.npz"])
    assert all("class indices" in m for m in by_file["npz_label_1e12.npz"])
    assert all("cannot be decompressed" in m for m in by_file["npz_corrupt_deflate.npz"])
    assert all("zip" in m for m in by_file["npz_is_a_single_npy.npz"])
