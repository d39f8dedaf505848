"""A bench row's recipe as tfmot can express it, for the references run in tfmot's own venv.

No TensorFlow here: the package's tests check these recipes, and the tfmot scripts import them.
"""

from __future__ import annotations

import importlib.util
import pathlib

ROWS_FILE = pathlib.Path(__file__).resolve().parent.parent / "rows.py"


def _rows() -> dict:
    spec = importlib.util.spec_from_file_location("bench_rows", ROWS_FILE)  # bench/rows.py: plain dicts, no imports
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ROWS


def mobilenet_recipe(row: str) -> dict:
    """The row's limit, training rules and per-layer targets .

    Where the row removes a fraction of a pointwise conv's output channels (``structured``), which tfmot cannot do
    through depthwise chains, that layer and the next pointwise conv (whose inputs go with them) keep the same number
    of weights by a higher unstructured target: 1 - (1 - sparsity)(1 - removed outputs)(1 - removed inputs).."""
    rows = _rows()
    if row not in rows or rows[row]["model"] != "mobilenet_v1":
        raise ValueError(f"Expected a MobileNet row of bench/rows.py. Received: {row!r}; "
                         f"choose from {[n for n, r in rows.items() if r['model'] == 'mobilenet_v1']}")
    spec = rows[row]
    prune, structured = spec["prune"], spec["prune"].get("structured", {})
    previous = {f"conv_pw_{i}": f"conv_pw_{i - 1}" for i in range(2, 14)} | {"conv_preds": "conv_pw_13"}
    layer_sparsity = {}
    for name in [f"conv_pw_{i}" for i in range(1, 14)] + ["conv_preds"]:
        density = ((1 - prune["layer_sparsity"].get(name, prune["sparsity"])) * (1 - structured.get(name, 0.0))
                   * (1 - structured.get(previous.get(name, ""), 0.0)))
        layer_sparsity[name] = round(1 - density, 6)
    return {"row": row, "limit": spec.get("limit", 0), "alpha": spec["model_kwargs"]["alpha"],
            "baseline": spec["baseline"], "finetune": {**spec["finetune"], "frequency": prune["frequency"]},
            "pqat": spec["qat"], "layer_sparsity": layer_sparsity}

