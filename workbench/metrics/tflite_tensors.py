"""Read the constant tensors (weights, biases, scales) stored in a .tflite flatbuffer."""

from __future__ import annotations

import dataclasses

import numpy as np

from workbench.errors import ModelError

_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8,
          10: np.float64}


@dataclasses.dataclass
class StoredTensor:
    name: str
    shape: tuple
    values: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)


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
        if dtype is None:
            continue
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
        values = np.frombuffer(raw, dtype=dtype)
        if shape and int(np.prod(shape)) == values.size:
            values = values.reshape(shape)
        q = tensor.quantization
        scales = np.asarray(q.scale if q is not None and q.scale is not None else [], dtype=np.float32)
        zeros = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], dtype=np.int64)
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
        out.append(StoredTensor(name, shape, values, scales, zeros))
    return out


def weight_tensors(data: bytes) -> list[StoredTensor]:
    """The int8 weight tensors (rank >= 2) of a .tflite model."""
    return [t for t in stored_tensors(data) if t.values.dtype == np.int8 and len(t.shape) >= 2]
