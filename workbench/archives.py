"""Reading user archives (.npz, .keras) in bounded memory: sizes are checked before anything is decompressed
or allocated, so a 2 MB zip bomb or an .npy header that declares terabytes is refused at once.

Limits (bytes), each configurable by an environment variable; the defaults fit a 24 GB machine serving
a class of 30 (each kernel also holds TensorFlow, about 1 GB):

- ``WORKBENCH_MAX_DATA_BYTES`` (default 256 MiB): the uncompressed arrays of one dataset upload,
  as stored (uint8 images count 1 byte per pixel; they become float32 afterwards, 4x).
- ``WORKBENCH_MAX_MODEL_BYTES`` (default 256 MiB): the uncompressed members of one .keras file.
- ``WORKBENCH_MAX_CONFIG_BYTES`` (default 16 MiB): a .keras file's config.json and metadata.json.
"""

from __future__ import annotations

import ast
import io
import os
import zipfile

import numpy as np

from workbench.errors import DataError, ModelError

MAX_CLASSES = 1000  # labels are class indices 0..MAX_CLASSES-1
_MAGIC = b"\x93NUMPY"


def limit(name: str, default: int) -> int:
    """A byte limit from the environment (``name``), or ``default``; refuses a malformed value clearly."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DataError(f"{name} must be a whole number of bytes. Received: {name}={raw!r}") from None
    if value <= 0:
        raise DataError(f"{name} must be > 0. Received: {name}={raw!r}")
    return value


def max_data_bytes() -> int:
    return limit("WORKBENCH_MAX_DATA_BYTES", 256 * 1024 * 1024)


def max_model_bytes() -> int:
    return limit("WORKBENCH_MAX_MODEL_BYTES", 256 * 1024 * 1024)


def max_config_bytes() -> int:
    return limit("WORKBENCH_MAX_CONFIG_BYTES", 16 * 1024 * 1024)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _open_zip(source, where: str, error) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise error(f"{where} is not a readable zip archive ({type(exc).__name__}).") from None


def check_zip_sizes(zf: zipfile.ZipFile, where: str, max_total: int, error, per_member: dict | None = None) -> None:
    """Refuse an archive whose members would decompress past ``max_total`` bytes (or a per-member limit)."""
    total = 0
    for info in zf.infolist():
        total += info.file_size
        cap = (per_member or {}).get(info.filename)
        if cap is not None and info.file_size > cap:
            raise error(f"{where}: {info.filename} would decompress to {_mib(info.file_size)}; the limit is "
                        f"{_mib(cap)}.")
    if total > max_total:
        raise error(f"{where} would decompress to {_mib(total)}; the limit is {_mib(max_total)} "
                    "(WORKBENCH_MAX_DATA_BYTES / WORKBENCH_MAX_MODEL_BYTES raise it).")


def _npy_header(fh, where: str) -> tuple[np.dtype, tuple, bool]:
    """Parse an .npy header without reading the data: (dtype, shape, fortran_order)."""
    magic = fh.read(8)
    if len(magic) < 8 or magic[:6] != _MAGIC:
        raise DataError(f"{where} is not an .npy array.")
    major = magic[6]
    size_bytes = 2 if major == 1 else 4
    length = int.from_bytes(fh.read(size_bytes), "little")
    if length > 65536:
        raise DataError(f"{where}: the .npy header is {length} bytes long; refusing it.")
    try:
        header = ast.literal_eval(fh.read(length).decode("latin1"))
        dtype = np.dtype(header["descr"])
        shape = tuple(int(d) for d in header["shape"])
        fortran = bool(header["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError, UnicodeDecodeError):
        raise DataError(f"{where}: the .npy header is malformed.") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{where}: dtype {dtype} is not a plain numeric array (objects are never unpickled).")
    if any(d < 0 for d in shape):
        raise DataError(f"{where}: negative dimension in shape {shape}.")
    return dtype, shape, fortran


def read_npz(source, where: str, max_total: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz (bytes or path), each checked before it is read: the archive's uncompressed size,
    then every .npy header's shape x itemsize, against ``max_total`` bytes in all."""
    max_total = max_data_bytes() if max_total is None else max_total
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    with _open_zip(source, where, DataError) as zf:
        check_zip_sizes(zf, where, max_total, DataError)
        arrays, declared = {}, 0
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            try:
                with zf.open(info) as fh:
                    dtype, shape, fortran = _npy_header(fh, f"{where}: {key}")
                    count = int(np.prod(shape, dtype=object))
                    nbytes = count * dtype.itemsize
                    declared += nbytes
                    if declared > max_total:
                        raise DataError(f"{where}: {key} declares shape {shape} of {dtype} ({_mib(nbytes)}); the "
                                        f"arrays would exceed the limit of {_mib(max_total)}.")
                    data = fh.read(nbytes + 1)
            except DataError:
                raise
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # corrupt deflate data, CRC, ...
                raise DataError(f"{where}: {key} cannot be decompressed ({type(exc).__name__}).") from None
            if len(data) != nbytes:
                raise DataError(f"{where}: {key} holds {len(data)} bytes of data; its header declares {nbytes}.")
            array = np.frombuffer(data, dtype=dtype, count=count)
            arrays[key] = array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
    if not arrays:
        raise DataError(f"{where} holds no .npy arrays; expected an .npz with images and labels.")
    return arrays


def check_keras_archive(source, where: str) -> None:
    """Refuse a .keras archive (bytes or path) whose members would decompress past the limits."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    with _open_zip(source, where, ModelError) as zf:
        config = max_config_bytes()
        check_zip_sizes(zf, where, max_model_bytes(), ModelError,
                        per_member={"config.json": config, "metadata.json": config})


def check_labels(labels: np.ndarray, where: str) -> None:
    """Labels are class indices 0..MAX_CLASSES-1; checked before anything scales with their values."""
    if labels.size and (labels.max() >= MAX_CLASSES or labels.min() < 0):
        bad = labels[(labels >= MAX_CLASSES) | (labels < 0)]
        shown = ", ".join(str(v) for v in np.unique(bad)[:3])
        raise DataError(f"{where}: labels must be class indices from 0 to {MAX_CLASSES - 1}. Received values like "
                        f"{shown}{' …' if np.unique(bad).size > 3 else ''}.")
