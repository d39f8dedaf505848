"""Keep C++ chatter (CUDA probing, absl notices, converter logs) off stderr."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def silenced_stderr():
    """Redirect file descriptor 2 (and Python's stdout) to /dev/null for the duration."""
    try:
        saved = os.dup(2)
    except OSError:
        saved = None
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        if saved is not None:
            os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)


def import_tensorflow_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    with silenced_stderr():
        import tensorflow  # noqa: F401
