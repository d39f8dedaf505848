"""Load a user's own data: an ``.npz`` of images and labels, or a folder of class subfolders."""

from __future__ import annotations

import pathlib

import numpy as np

from workbench.archives import read_npz
from workbench.data.dataset import Dataset, as_images, stratified_indices
from workbench.errors import DataError

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
IMAGE_KEYS = ("images", "x", "x_train", "data")
LABEL_KEYS = ("labels", "y", "y_train", "targets")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _pick(keys, candidates, what, where):
    for k in candidates:
        if k in keys:
            return k
    raise DataError(f"{where}: no {what} array found. Received keys {sorted(keys)}; expected one of {list(candidates)}.")


def load_npz(source, name: str = "user", test_fraction: float = 0.2, max_bytes: int = MAX_UPLOAD_BYTES) -> Dataset:
    """Load an ``.npz`` (path or bytes) holding images and labels; never unpickles.

    Uses ``x_test``/``y_test`` when present, otherwise a stratified split of ``test_fraction``. The
    compressed file may be at most ``max_bytes``; its arrays at most ``WORKBENCH_MAX_DATA_BYTES``
    uncompressed (see ``workbench.archives``), checked before they are read.
    """
    where = str(source) if isinstance(source, (str, pathlib.Path)) else f"upload {name!r}"
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise DataError(f"{where} is {len(source)} bytes; the limit is {max_bytes} bytes.")
        fh = bytes(source)
    else:
        path = pathlib.Path(source)
        if not path.is_file():
            raise DataError(f"No such file: {path}. Give the path of an .npz with images and labels.")
        if path.stat().st_size > max_bytes:
            raise DataError(f"{path} is {path.stat().st_size} bytes; the limit is {max_bytes} bytes.")
        fh = path
    arrays = read_npz(fh, where)  # sizes checked before anything is decompressed; never unpickles
    xk = _pick(arrays, IMAGE_KEYS, "image", where)
    yk = _pick(arrays, LABEL_KEYS, "label", where)
    x, y = as_images(arrays[xk], arrays[yk], where)
    if "x_test" in arrays and "y_test" in arrays:
        xt, yt = as_images(arrays["x_test"], arrays["y_test"], where + " (test)")
    else:
        x, y, xt, yt = _split(x, y, test_fraction, where)
    return _finish(name, f"user file {where}", x, y, xt, yt, None)


def load_folder(folder, name: str = "user", test_fraction: float = 0.2, size: tuple[int, int] | None = None) -> Dataset:
    """Load a folder of class subfolders of images; class names are the subfolder names."""
    from PIL import Image, UnidentifiedImageError

    root = pathlib.Path(folder)
    if not root.is_dir():
        raise DataError(f"No such folder: {root}. Give a folder holding one subfolder of images per class.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root} has {len(classes)} class subfolder(s) {classes}; at least 2 are needed.")
    images, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"Class folder {root / cls} is empty: it has no {list(IMAGE_SUFFIXES)} images.")
        for p in files:
            try:
                with Image.open(p) as im:
                    im = im.convert("L") if im.mode in ("L", "1", "P", "LA", "I;16") else im.convert("RGB")
                    if size is None:
                        size = im.size
                    if im.size != tuple(size):
                        im = im.resize(tuple(size))
                    images.append(np.asarray(im, dtype=np.uint8))
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"Cannot read image {p}: {exc}") from None
            labels.append(label)
    ranks = {a.ndim for a in images}
    if len(ranks) != 1:
        raise DataError(f"{root} mixes grayscale and colour images; convert them to one kind.")
    x, y = as_images(np.stack(images), np.asarray(labels), str(root))
    x, y, xt, yt = _split(x, y, test_fraction, str(root))
    return _finish(name, f"user folder {root}", x, y, xt, yt, classes)


def _split(x, y, test_fraction, where):
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1). Received: test_fraction={test_fraction!r}")
    n_test = max(1, int(round(len(y) * test_fraction)))
    if len(y) - n_test < 1:
        raise DataError(f"{where}: {len(y)} examples are too few to split into train and test.")
    test = stratified_indices(y, n_test, seed=0)
    train = np.random.default_rng(1).permutation(np.setdiff1d(np.arange(len(y)), test))
    return x[train], y[train], x[test], y[test]


def _finish(name, source, x, y, xt, yt, classes) -> Dataset:
    if x.shape[1:] != xt.shape[1:]:
        raise DataError(f"Train images {x.shape[1:]} and test images {xt.shape[1:]} differ in shape.")
    n = int(max(y.max(), yt.max())) + 1
    counts = np.bincount(y, minlength=n)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        shown = ", ".join(str(i) for i in empty[:5]) + (f" and {empty.size - 5} more" if empty.size > 5 else "")
        raise DataError(f"Classes {shown} have no training examples; labels must be 0..{n - 1} with every class "
                        "present.")
    names = classes if classes is not None else [str(i) for i in range(n)]
    return Dataset(name, source, x, y, xt, yt, list(names), tuple(x.shape[1:]))
