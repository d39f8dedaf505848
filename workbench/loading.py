"""Load a user's or the workbench's ``.keras`` model safely (Keras safe_mode: no Lambda code, no pickles) and check it."""

from __future__ import annotations

import os
import pathlib
import tempfile
import zipfile

import keras

from workbench.archives import check_keras_archive
from workbench.errors import ModelError
from workbench.pruning.wrapper import PruneWrapper
from workbench.quantization.api import check_supported
from workbench.quantization.layers import Absorbed, QuantOutput, QuantWeightLayer

MAX_MODEL_BYTES = 200 * 1024 * 1024


def _custom_objects() -> dict:
    """The workbench's own layers, so pruned and QAT files it wrote load back (they are not user code)."""
    return {"PruneWrapper": PruneWrapper, "QuantWeightLayer": QuantWeightLayer, "Absorbed": Absorbed,
            "QuantOutput": QuantOutput}


def load_user_model(source, name: str = "model.keras", max_bytes: int = MAX_MODEL_BYTES,
                    check: bool = True) -> keras.Model:
    """Load a ``.keras`` file (path or bytes) with ``safe_mode=True`` and check its layers.

    Raises ModelError for a missing, oversized, corrupt or unsupported model, naming the problem.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise ModelError(f"Upload {name!r} is {len(data)} bytes; the limit is {max_bytes} bytes.")
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "upload.keras"
            path.write_bytes(data)
            return _load(path, name, check)
    path = pathlib.Path(source)
    if not path.is_file():
        raise ModelError(f"No such file: {path}. Give the path of a .keras model.")
    if path.stat().st_size > max_bytes:
        raise ModelError(f"{path} is {path.stat().st_size} bytes; the limit is {max_bytes} bytes.")
    return _load(path, str(path), check)


def _load(path: pathlib.Path, label: str, check: bool) -> keras.Model:
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{label} is not a .keras archive (a zip with config.json and weights). "
                         "Save the model with model.save('name.keras').")
    check_keras_archive(path, label)  # a padded config.json or weights refused before Keras reads them
    try:
        model = keras.saving.load_model(os.fspath(path), custom_objects=_custom_objects(), compile=False,
                                        safe_mode=True)
    except Exception as exc:  # Keras raises many types for bad archives; report them as one
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"Cannot load {label} in safe mode: {reason[:400]}") from None
    if not isinstance(model, keras.Model):
        raise ModelError(f"{label} holds a {type(model).__name__}, not a Keras model.")
    if check:
        check_model(model, label)
    return model


def check_model(model: keras.Model, label: str = "model") -> None:
    """Raise ModelError unless the model is an image classifier the workbench can compress."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{label} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "one image input and one class output are needed.")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] not in (1, 3):
        raise ModelError(f"{label} takes inputs of shape {shape}; expected images (batch, H, W, 1 or 3).")
    check_supported(model)
    wrong = sorted({f"{w.path.split('/')[0]} ({w.dtype})" for w in model.weights if str(w.dtype) != "float32"
                    and "mask" not in w.path and "assignment" not in w.path})
    if wrong:
        raise ModelError(f"{label} has weights that are not float32: {', '.join(wrong[:3])}. The workbench trains, "
                         "prunes and quantizes float32 models; rebuild it with the default dtype policy.")
    first = next((layer for layer in model.layers if type(layer).__name__ != "InputLayer"), None)
    if first is not None and type(first).__name__ in ("Rescaling", "Normalization"):
        raise ModelError(f"{label} starts with a {type(first).__name__} layer ({first.name!r}), but the workbench "
                         "feeds every model images already scaled to [0, 1]: the model would see them scaled twice "
                         "and score at chance. Remove that layer (the data is scaled for it) and upload again.")
