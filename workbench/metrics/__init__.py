"""Size accounting: fp32, .tflite, gzip and entropy-coded bytes."""

from workbench.metrics.size import RATIO_FORMULA, SizeReport, entropy_coded_bytes, fp32_bytes, layer_table, size_report

__all__ = ["RATIO_FORMULA", "SizeReport", "entropy_coded_bytes", "fp32_bytes", "layer_table", "size_report"]
