"""workbench.widgets starts without compiling rfc3987_syntax's grammars, and jsonschema's IRI checks still work."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
import workbench.widgets
assert 'plotly.graph_objs._figurewidget' in sys.modules and 'jsonschema' in sys.modules
assert 'lark' not in sys.modules, 'the grammars were compiled at import'
from jsonschema import FormatChecker
checker = FormatChecker()
assert checker.conforms('https://example.org/\u00e4', 'iri') and not checker.conforms('not an iri ::', 'iri')
import rfc3987_syntax
assert hasattr(rfc3987_syntax, 'RFC3987_SYNTAX_GRAMMAR') or 'lark' in sys.modules  # the real package
print('ok')
"""


def test_widgets_import_leaves_the_iri_grammars_for_later():
    pytest.importorskip("rfc3987_syntax")
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
