"""Compute of a .tflite, counted from its graph: multiply-accumulates of every CONV_2D, DEPTHWISE_CONV_2D
and FULLY_CONNECTED op for one image, and how many of them meet a non-zero weight (what a sparse kernel
would have to do; LiteRT's int8 kernels do the dense count)."""

from __future__ import annotations

import numpy as np

from workbench.errors import ModelError
from workbench.metrics.tflite_tensors import INT4, _TYPES, unpack_int4

CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED = 3, 4, 9
OP_NAMES = {CONV_2D: "CONV_2D", DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D", FULLY_CONNECTED: "FULLY_CONNECTED"}


def _weights(model, tensor) -> np.ndarray | None:
    buf = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    if buf is None or buf.data is None or len(buf.data) == 0:
        return None
    raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
    count = int(np.prod(tensor.shape))
    if tensor.type == INT4:
        return unpack_int4(raw, count)
    dtype = _TYPES.get(tensor.type)
    return None if dtype is None else np.frombuffer(raw, dtype=dtype)[:count]


def graph_macs(data: bytes) -> dict:
    """{'macs', 'flops' (= 2 x macs), 'nonzero_macs', 'ops': [{'op', 'output', 'macs', 'nonzero_macs'}]}
    for one image (the batch dimension of the graph's shapes is left out)."""
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise ModelError(f"Cannot parse the .tflite flatbuffer: {exc}") from None
    graph = model.subgraphs[0]
    ops, total, nonzero_total = [], 0, 0
    for op in graph.operators:
        code_entry = model.operatorCodes[op.opcodeIndex]
        code = max(int(code_entry.builtinCode), int(code_entry.deprecatedBuiltinCode))
        if code not in OP_NAMES:
            continue
        out = graph.tensors[op.outputs[0]]
        weight = graph.tensors[op.inputs[1]]
        wshape = [int(d) for d in weight.shape]
        oshape = [int(d) for d in out.shape]
        positions = int(np.prod(oshape[1:-1])) if code != FULLY_CONNECTED else int(np.prod(oshape[1:-1]) or 1)
        per_position = int(np.prod(wshape))  # conv: Cout*kh*kw*Cin; depthwise: kh*kw*C; dense: units*inputs
        macs = positions * per_position
        values = _weights(model, weight)
        nonzero = positions * int(np.count_nonzero(values)) if values is not None else macs
        name = out.name.decode() if isinstance(out.name, bytes) else str(out.name)
        ops.append({"op": OP_NAMES[code], "output": name, "macs": macs, "nonzero_macs": nonzero})
        total += macs
        nonzero_total += nonzero
    return {"macs": total, "flops": 2 * total, "nonzero_macs": nonzero_total, "ops": ops}
