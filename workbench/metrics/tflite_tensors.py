"""Read the constant tensors (weights, biases, scales) stored in a .tflite flatbuffer."""

from __future__ import annotations

import dataclasses

import numpy as np

from workbench.errors import ModelError

_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8,
          10: np.float64}
INT4 = 17  # TensorType.INT4: two signed 4-bit values per byte, low nibble first


def unpack_int4(raw: bytes, count: int) -> np.ndarray:
    """Unpack TFLite's packed INT4 buffer into ``count`` int8 values in [-8, 7]."""
    packed = np.frombuffer(raw, dtype=np.uint8)
    nibbles = np.empty(packed.size * 2, dtype=np.int16)
    nibbles[0::2] = packed & 0x0F
    nibbles[1::2] = packed >> 4
    nibbles[nibbles > 7] -= 16
    return nibbles[:count].astype(np.int8)


@dataclasses.dataclass
class StoredTensor:
    name: str
    shape: tuple
    values: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray
    stored_bytes: int = 0  # bytes in the file (packed INT4 takes half a byte per value)
    packed_int4: bool = False

    @property
    def nbytes(self) -> int:
        return int(self.stored_bytes or self.values.nbytes)


def stored_tensors(data: bytes) -> list[StoredTensor]:
    """Every tensor of the first subgraph that has data in a buffer (the model's constants)."""
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise ModelError(f"Cannot parse the .tflite flatbuffer: {exc}") from None
    out = []
    for tensor in model.subgraphs[0].tensors:
        buf = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
        if buf is None or buf.data is None or len(buf.data) == 0:
            continue
        dtype = _TYPES.get(tensor.type)
        if dtype is None and tensor.type != INT4:
            continue
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
        if tensor.type == INT4:
            values = unpack_int4(raw, int(np.prod(shape)))
        else:
            values = np.frombuffer(raw, dtype=dtype)
        if shape and int(np.prod(shape)) == values.size:
            values = values.reshape(shape)
        q = tensor.quantization
        scales = np.asarray(q.scale if q is not None and q.scale is not None else [], dtype=np.float32)
        zeros = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], dtype=np.int64)
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
        out.append(StoredTensor(name, shape, values, scales, zeros, len(raw), tensor.type == INT4))
    return out


def weight_tensors(data: bytes) -> list[StoredTensor]:
    """The integer weight tensors (rank >= 2; int8, or packed INT4 unpacked to int8) of a .tflite model."""
    return [t for t in stored_tensors(data) if t.values.dtype == np.int8 and len(t.shape) >= 2]
