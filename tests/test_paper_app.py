"""The paper app without a browser: human tables, no NaN anywhere, the comparison and step charts, the live run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from workbench.widgets.paper import (MISSING, PaperApp, breakdown_table, comparison_points, our_table,
                                     published_table, table_html)


def _finite(values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def test_tables_have_human_headers_separators_and_a_dash_for_what_a_source_lacks():
    frame = pd.DataFrame([{"result": "a", "fp32 bytes": 1724320, "compressed bytes": np.nan, "ratio": 63.94,
                           "accuracy change (points)": -0.35}])
    text = table_html(frame)
    assert "1,724,320" in text and "63.9×" in text and "-0.35" in text and MISSING in text
    assert "nan" not in text.lower()
    raw = pd.DataFrame([{"step": "fp32 .tflite", "bytes": 1724, "gzip_bytes": None, "what it shows": "x",
                         "ratio_vs_fp32": 1.0}])
    headers = list(breakdown_table(raw).columns)
    assert "gzip_bytes" not in headers and "ratio_vs_fp32" not in headers and "gzip -9 bytes (shipped)" in headers
    for table in (published_table(), our_table()):
        assert "nan" not in table_html(table).lower()


def test_the_comparison_chart_holds_every_result_with_finite_figures():
    app = PaperApp()
    expected = comparison_points()
    shown = [(trace.name, text, x, y) for trace in app.comparison.data for text, x, y in zip(trace.text, trace.x,
                                                                                            trace.y)]
    assert len(shown) == len(expected) == len(published_table()) + len(our_table())
    assert {name for name, *_ in shown} == {"published", "this workbench (make bench)"}
    assert _finite([x for *_, x, _ in shown]) and _finite([y for *_, y in shown])
    json.dumps(app.comparison.to_dict(), allow_nan=False)  # nothing a browser's JSON would refuse
    assert "settings" in our_table().columns and all(our_table()["settings"] != MISSING)
    assert "last column" in app.note.value


@pytest.mark.slow
def test_the_live_run_draws_its_steps_and_joins_the_comparison():
    app = PaperApp(epochs=1, train_limit=1000)
    assert app.run()
    assert app.job.join(600)
    app._done(app.job)  # what the kernel's event loop does after the thread ends (tests have none)
    assert app.report is not None, app.status.value
    (bars,) = app.steps.data
    assert list(bars.x)[0] == "fp32 parameters" and len(bars.x) == 5 and _finite(bars.y)
    assert not app.steps.layout.annotations  # the empty-state note is gone
    assert "live run (quick settings)" in {trace.name for trace in app.comparison.data}
    assert "gzip -9 bytes (shipped)" in app.breakdown.value and "test split" in app.status.value
    json.dumps(app.steps.to_dict(), allow_nan=False)
