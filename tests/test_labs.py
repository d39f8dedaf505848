"""Lab self-checks and the size breakdown."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench import labs
from workbench.breakdown import size_breakdown
from workbench.config import PruneConfig
from workbench.pruning.api import prune_model, strip_pruning
from workbench.quantization.api import quantize_model


def test_checks_say_right_and_wrong():
    assert labs.check_pruned_count(360_000, 400_000, 0.9)
    assert not labs.check_pruned_count(40_000, 400_000, 0.9)
    assert not labs.check_pruned_count("lots", 400_000, 0.9)
    assert labs.check_levels(15, 4) and not labs.check_levels(16, 4)
    frame = pd.DataFrame({"layer": ["a", "b"], "sparsity": [0.9, 0.9], "accuracy": [0.8, 0.3]})
    assert labs.check_most_sensitive("b", frame, 0.9) and not labs.check_most_sensitive("a", frame, 0.9)
    assert labs.check_better("y", 0.5, 0.7, "x", "y") and not labs.check_better("x", 0.5, 0.7, "x", "y")
    assert labs.check_ratio(20.0, 2000, 100) and not labs.check_ratio(10.0, 2000, 100)
    assert labs.check_beats(25, -0.1, 4.6, -1.6, "paper") and not labs.check_beats(3, -0.1, 4.6, -1.6, "paper")
    assert labs.check_count(27, 27, "things") and not labs.check_count(None, 27, "things")
    assert str(labs.check_levels(15, 4)).startswith("✓") and "✗" in labs.check_levels(3, 4)._repr_html_()


@pytest.mark.slow
def test_breakdown_shows_pruning_alone_does_not_shrink_the_file(trained_lenet, small_mnist):
    pruned, _ = prune_model(trained_lenet, PruneConfig(sparsity=0.9))
    qat, _ = quantize_model(pruned, calibration_data=small_mnist.x_train[:256])
    frame = size_breakdown(trained_lenet, strip_pruning(pruned), qat, small_mnist.x_train[:100]).set_index("step")
    base, sparse, int8 = (frame.loc[k] for k in ("fp32 .tflite", "pruned fp32 .tflite", "pruned + QAT int8 .tflite"))
    assert abs(sparse.bytes - base.bytes) / base.bytes < 0.01  # same file size
    assert sparse.gzip_bytes < base.gzip_bytes / 2  # but the zeros compress
    assert int8.bytes < base.bytes / 3.5 and int8.gzip_bytes < sparse.gzip_bytes
    entropy = frame.loc["entropy-coded int8 (Deep Compression count)"]
    assert entropy.bytes < int8.gzip_bytes
    assert entropy.ratio_vs_fp32 > int8.ratio_vs_fp32 > sparse.ratio_vs_fp32 > base.ratio_vs_fp32
