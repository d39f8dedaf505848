"""CompressionReport: everything one compress() run measured, JSON-ready."""

from __future__ import annotations

import dataclasses
import json


@dataclasses.dataclass
class CompressionReport:
    """Accuracies (fractions in [0, 1]), sizes, settings, data source and seconds per stage."""

    model: str
    dataset: dict
    settings: dict
    accuracy: dict  # baseline, pruned, qat, int8 (keras fp32 / keras / keras QAT / LiteRT int8)
    sparsity: dict  # overall and per layer
    sizes: dict  # fp32, tflite, gzip, entropy bytes, ratios and the formula
    seconds: dict  # per stage
    files: dict = dataclasses.field(default_factory=dict)
    prune: dict = dataclasses.field(default_factory=dict)
    quant: dict = dataclasses.field(default_factory=dict)
    stopped: bool = False

    @property
    def compression_ratio(self) -> float:
        return float(self.sizes["compression_ratio"])

    @property
    def accuracy_delta(self) -> float:
        """int8 artifact accuracy minus fp32 baseline accuracy (fraction)."""
        return float(self.accuracy["int8"] - self.accuracy["baseline"])

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=_plain))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "CompressionReport":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def summary_rows(self) -> list[tuple[str, str]]:
        """(label, value) rows for a table."""
        a, s = self.accuracy, self.sizes
        pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
        return [
            ("data", self.dataset.get("source", "")),
            ("accuracy fp32 baseline", pct(a["baseline"])),
            ("accuracy pruned (keras)", pct(a["pruned"])),
            ("accuracy QAT (keras)", pct(a["qat"])),
            ("accuracy int8 .tflite", pct(a["int8"])),
            ("change vs baseline", f"{100 * (a['int8'] - a['baseline']):+.2f} points"),
            ("sparsity", f"{self.sparsity['overall']:.3f}"),
            ("fp32 bytes", f"{s['fp32_bytes']:,}"),
            (".tflite bytes", f"{s['tflite_bytes']:,}"),
            ("gzip -9 bytes", f"{s['gzip_bytes']:,}"),
            ("entropy-coded bytes", f"{s['entropy_bytes']:,}"),
            ("compression ratio", f"{s['compression_ratio']:.1f}x  ({s['ratio_formula']})"),
            ("entropy-coded ratio", f"{s['entropy_ratio']:.1f}x"),
            ("seconds", ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items())),
        ]


def _plain(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, tuple):
        return list(value)
    return str(value)
