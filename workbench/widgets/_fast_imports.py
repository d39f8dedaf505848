"""Keep a grammar compiler off every Studio start.

plotly's FigureWidget imports nbformat, which imports jsonschema, whose format checkers import
``rfc3987_syntax`` when it is installed (Jupyter installs it, through ``jsonschema[format-nongpl]``). That
package compiles 38 lark grammars at import time: about 3.5 s of every kernel's start on this machine, for
two format checkers ("iri", "iri-reference") that nothing here uses. jsonschema is imported here with a
stand-in whose ``is_valid_syntax`` imports the real package on its first call, so those checkers still work,
and ``import rfc3987_syntax`` elsewhere still gets the real package.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def import_jsonschema_lazily() -> None:
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    try:
        if importlib.util.find_spec("rfc3987_syntax") is None or importlib.util.find_spec("jsonschema") is None:
            return
    except (ImportError, ValueError):
        return
    stand_in = types.ModuleType("rfc3987_syntax")

    def is_valid_syntax(*args, **kwargs):
        if sys.modules.get("rfc3987_syntax") is stand_in:
            del sys.modules["rfc3987_syntax"]
        from rfc3987_syntax import is_valid_syntax as real

        return real(*args, **kwargs)
    stand_in.is_valid_syntax = is_valid_syntax
    sys.modules["rfc3987_syntax"] = stand_in
    try:
        import jsonschema  # noqa: F401
    finally:
        if sys.modules.get("rfc3987_syntax") is stand_in:
            del sys.modules["rfc3987_syntax"]
