"""Export to a full-integer int8 TFLite model and evaluate it with LiteRT (ai_edge_litert)."""

from __future__ import annotations

import dataclasses
import gzip
import os
import pathlib
import warnings

import numpy as np

from workbench._quiet import silenced_stderr
from workbench.errors import ConfigError, ModelError
from workbench.io import write_bytes
from workbench.quantization.layers import weights_stored_as_int8

MAX_TFLITE_BYTES = 512 * 1024 * 1024
# "size": weights of 4 bits or fewer packed as INT4, two per byte (the smallest file); "speed": every weight
# int8 (the same values), which LiteRT's XNNPACK int8 kernels run; INT4 layers fall back to slower kernels.
TARGETS = ("size", "speed")


def check_target(target) -> str:
    if target not in TARGETS:
        raise ConfigError(f"target must be one of {TARGETS}. Received: target={target!r}")
    return target


@dataclasses.dataclass
class ExportReport:
    """The int8 artifact and its sizes."""

    tflite_bytes: int
    gzip_bytes: int
    int8_io: bool
    path: str | None = None
    target: str = "size"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def gzip_size(data: bytes) -> int:
    """Bytes of ``gzip -9`` of ``data`` (no file name, fixed mtime)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def convert_int8(model, representative_images: np.ndarray, int8_io: bool = False, samples: int = 200,
                 target: str = "size") -> bytes:
    """Convert a Keras model (QAT or float) to full-integer int8 TFLite bytes.

    Fake-quant ranges of a QAT model are used where present; ``representative_images`` calibrate
    every other tensor (and the whole model for post-training quantization). ``target`` "size" packs layers
    of at most 4 weight bits as INT4; "speed" stores them as int8 with the same values (see TARGETS).
    """
    import tensorflow as tf

    check_target(target)
    if target == "speed":
        with weights_stored_as_int8(model):
            return convert_int8(model, representative_images, int8_io, samples, target="size")

    images = np.asarray(representative_images, dtype=np.float32)
    if images.ndim < 2 or len(images) == 0:  # NHWC for a CNN; any batch of the model's inputs (e.g. one Dense layer)
        raise ModelError(f"representative_images must be a non-empty batch of model inputs. "
                         f"Received shape={images.shape}")
    expected = tuple(model.inputs[0].shape[1:])
    if tuple(images.shape[1:]) != expected:
        raise ModelError(f"representative_images have shape {images.shape[1:]}; the model expects {expected}.")

    def representative():
        for i in range(min(samples, len(images))):
            yield [images[i:i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with silenced_stderr(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises many types; report them as one
        raise ModelError(f"TFLite int8 conversion failed for model {model.name!r}: {exc}") from exc


def convert_float(model) -> bytes:
    """Convert a Keras model to a float32 TFLite model (no quantization), for size comparisons."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    try:
        with silenced_stderr():
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises many types; report them as one
        raise ModelError(f"TFLite float conversion failed for model {model.name!r}: {exc}") from exc


def export_tflite(model, representative_images: np.ndarray, path: str | os.PathLike | None = None,
                  int8_io: bool = False, target: str = "size") -> tuple[bytes, ExportReport]:
    """Convert to int8 TFLite (``target`` "size" or "speed"), optionally write it atomically to ``path``;
    return (bytes, report)."""
    data = convert_int8(model, representative_images, int8_io=int8_io, target=target)
    if path is not None:
        write_bytes(path, data)
    return data, ExportReport(len(data), gzip_size(data), int8_io, str(path) if path else None, target)


def load_tflite_bytes(source) -> bytes:
    """Read TFLite bytes from a path or bytes, refusing what is not a TFLite flatbuffer."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        p = pathlib.Path(source)
        if not p.is_file():
            raise ModelError(f"No such file: {p}. Give the path of a .tflite model.")
        if p.stat().st_size > MAX_TFLITE_BYTES:
            raise ModelError(f"{p} is {p.stat().st_size} bytes; the limit is {MAX_TFLITE_BYTES} bytes.")
        data = p.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"Not a TFLite model: expected the 'TFL3' identifier at byte 4, got {data[4:8]!r}.")
    return data


def interpreter(source, threads: int | None = None, delegates: bool = True):
    """A LiteRT interpreter for a .tflite path or bytes (``threads``: its CPU threads; None: LiteRT's default).

    ``delegates=False`` runs LiteRT's built-in kernels only, without its default XNNPACK delegate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = load_tflite_bytes(source)
    resolver = {} if delegates else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    try:
        return Interpreter(model_content=data, num_threads=threads, **resolver)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"LiteRT cannot load this model: {exc}") from None


def as_input(images: np.ndarray, detail: dict) -> np.ndarray:
    """Float images in [0, 1] as the input tensor ``detail`` takes them (quantized for an int8 input)."""
    if detail["dtype"] in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(images / scale + zero), info.min, info.max).astype(detail["dtype"])
    return np.asarray(images, dtype=np.float32)


def predict_tflite(source, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run a .tflite model on float images in [0, 1]; returns float outputs (dequantized)."""
    interp = interpreter(source)
    inp = interp.get_input_details()[0]
    expected = tuple(int(d) for d in inp["shape"][1:])
    images = np.asarray(images, dtype=np.float32)
    if tuple(images.shape[1:]) != expected:
        raise ModelError(f"Images have shape {images.shape[1:]}; this .tflite model expects {expected}.")
    outputs = []
    current = None
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        if current != len(batch):
            interp.resize_tensor_input(inp["index"], [len(batch), *expected])
            interp.allocate_tensors()
            current = len(batch)
            inp = interp.get_input_details()[0]
            out = interp.get_output_details()[0]
        interp.set_tensor(inp["index"], as_input(batch, inp))
        interp.invoke()
        result = interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            scale, zero = out["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        outputs.append(result)
    return np.concatenate(outputs)


def evaluate_tflite(source, images: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of a .tflite model on (images, labels)."""
    labels = np.asarray(labels)
    if len(labels) != len(images):
        raise ModelError(f"{len(images)} images but {len(labels)} labels.")
    preds = predict_tflite(source, images, batch_size).argmax(axis=-1)
    return float((preds == labels).mean())


def c_header(data: bytes, name: str = "g_model", header: str = "model_data.h") -> str:
    """The header that declares the model array of :func:`to_c_array` (external linkage, 16-byte aligned)."""
    _check_c_name(name)
    guard = "".join(c if c.isalnum() else "_" for c in header).upper() + "_"
    return (f"// int8 TFLite model, {len(data)} bytes. Generated by the CNN Compression Workbench.\n"
            f"#ifndef {guard}\n#define {guard}\n\n"
            f"// The flatbuffer, aligned to 16 bytes as TensorFlow Lite Micro requires.\n"
            f"extern const unsigned char {name}[];\n"
            f"extern const unsigned int {name}_len;  // {len(data)}\n\n#endif  // {guard}\n")


def to_c_array(data: bytes, name: str = "g_model", header: str = "model_data.h") -> str:
    """The model as a C++ source file for TensorFlow Lite Micro (like ``xxd -i``), defining what
    :func:`c_header` declares. Include the header where the model is used; link this file in."""
    _check_c_name(name)
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + 12]) for i in range(0, len(data), 12)]
    body = ",\n  ".join(rows)
    return (f"// int8 TFLite model, {len(data)} bytes. Generated by the CNN Compression Workbench.\n"
            f"#include \"{header}\"\n\n"
            f"alignas(16) extern const unsigned char {name}[] = {{\n  {body}\n}};\n"
            f"extern const unsigned int {name}_len = {len(data)};\n")


def _check_c_name(name: str) -> None:
    if not name.isidentifier() or not name.isascii():
        raise ModelError(f"name must be a C identifier. Received: name={name!r}")
