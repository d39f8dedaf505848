"""Which step bought what: sizes of the same model after each compression step.

Pruning alone leaves a dense fp32 file the same size (zeros still take 4 bytes); gzip turns the
zeros into savings; int8 quantization cuts every weight to a quarter; entropy coding of the
sparse int8 weights goes further still.
"""

from __future__ import annotations

import pandas as pd

from workbench.export.tflite import convert_float, convert_int8, gzip_size
from workbench.metrics.size import entropy_coded_bytes, fp32_bytes


def size_breakdown(baseline, pruned_plain, qat, representative_images) -> pd.DataFrame:
    """Rows: fp32 parameters, fp32 .tflite, pruned fp32 .tflite, int8 .tflite; bytes, gzip and ratio.

    Args:
        baseline: the trained float model.
        pruned_plain: the pruned float model with masks baked in (``strip_pruning``).
        qat: the quantization-aware model (``quantize_model``), exported to int8.
        representative_images: calibration images for the int8 conversion.
    """
    fp32 = fp32_bytes(baseline)
    base_tfl = convert_float(baseline)
    pruned_tfl = convert_float(pruned_plain)
    int8_tfl = convert_int8(qat, representative_images)
    entropy, _ = entropy_coded_bytes(int8_tfl)
    rows = [
        ("fp32 parameters", fp32, None, "4 bytes per weight"),
        ("fp32 .tflite", len(base_tfl), gzip_size(base_tfl), "the float model as a file"),
        ("pruned fp32 .tflite", len(pruned_tfl), gzip_size(pruned_tfl),
         "pruning alone: same file size, zeros compress"),
        ("pruned + QAT int8 .tflite", len(int8_tfl), gzip_size(int8_tfl), "1 byte per weight, integer arithmetic"),
        ("entropy-coded int8 (Deep Compression count)", entropy, None, "sparse format + Huffman coding"),
    ]
    frame = pd.DataFrame(rows, columns=["step", "bytes", "gzip_bytes", "what it shows"])
    shipped = frame.gzip_bytes.fillna(frame.bytes)
    frame["ratio_vs_fp32"] = fp32 / shipped
    return frame
