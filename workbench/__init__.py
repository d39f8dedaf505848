"""CNN Compression Workbench: prune, quantize (QAT) and export CNNs to int8 TFLite, with measured sizes.

The core never imports a UI package; widgets live in ``workbench.widgets``.
"""

from workbench._quiet import import_tensorflow_quietly

import_tensorflow_quietly()

from workbench.config import PruneConfig, QuantConfig, TrainConfig  # noqa: E402
from workbench.data import Dataset, load_dataset, load_folder, load_npz  # noqa: E402
from workbench.errors import ConfigError, DataError, ModelError, WorkbenchError  # noqa: E402
from workbench.export import evaluate_tflite, export_tflite, to_c_array  # noqa: E402
from workbench.metrics import SizeReport, layer_table, size_report  # noqa: E402
from workbench.loading import load_user_model  # noqa: E402
from workbench.models import build_model, lenet5, lenet5_classic, mobilenet_v1  # noqa: E402
from workbench.pipeline import compress  # noqa: E402
from workbench.pruning.api import prune_model, strip_pruning  # noqa: E402
from workbench.pruning.sensitivity import sensitivity_scan  # noqa: E402
from workbench.pruning.structured import prune_filters  # noqa: E402
from workbench.quantization.api import quantize_model  # noqa: E402
from workbench.report import CompressionReport  # noqa: E402
from workbench.search import SearchReport, SearchSpace, search  # noqa: E402
from workbench import labs, train  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CompressionReport", "ConfigError", "DataError", "Dataset", "ModelError", "PruneConfig", "QuantConfig",
    "SizeReport", "TrainConfig", "WorkbenchError", "build_model", "compress", "evaluate_tflite", "export_tflite",
    "layer_table", "lenet5", "lenet5_classic", "load_dataset", "load_folder", "load_npz", "load_user_model",
    "mobilenet_v1", "prune_filters", "prune_model", "quantize_model", "sensitivity_scan", "size_report",
    "strip_pruning", "to_c_array", "labs", "train", "search", "SearchReport", "SearchSpace",
]
