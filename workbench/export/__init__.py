"""Export to int8 TFLite and evaluation of the artifact with LiteRT."""

from workbench.export.tflite import (ExportReport, convert_float, convert_int8, evaluate_tflite, export_tflite, gzip_size,
                                     c_header, interpreter, load_tflite_bytes, predict_tflite,
                                     to_c_array)

__all__ = ["ExportReport", "convert_float", "convert_int8", "evaluate_tflite", "export_tflite", "gzip_size", "interpreter",
           "load_tflite_bytes", "predict_tflite", "to_c_array", "c_header"]
