"""Import TensorFlow with its C++ start-up chatter (CUDA probing, absl notices) kept off stderr."""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    try:
        saved = os.dup(2)
    except OSError:
        import tensorflow  # noqa: F401
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
