"""CompressionReport: everything one compress() run measured, JSON-ready."""

from __future__ import annotations

import dataclasses
import json

from workbench.export.micro import micro_text
from workbench.metrics.latency import speed_text


@dataclasses.dataclass
class CompressionReport:
    """Accuracies (fractions in [0, 1]), sizes, settings, data source and seconds per stage.

    ``accuracy`` holds the final figures on the test split (fp32 baseline, int8 .tflite);
    ``test`` adds their 95% Wilson intervals and McNemar's paired test; ``validation`` holds the
    accuracy after each stage on the validation split, where every choice is made.
    """

    model: str
    dataset: dict
    settings: dict
    accuracy: dict  # test split: baseline (keras fp32), int8 (LiteRT)
    sparsity: dict  # overall and per layer
    sizes: dict  # fp32, tflite, gzip, entropy bytes, ratios and the formula
    seconds: dict  # per stage
    files: dict = dataclasses.field(default_factory=dict)
    prune: dict = dataclasses.field(default_factory=dict)
    quant: dict = dataclasses.field(default_factory=dict)
    stopped: bool = False
    validation: dict = dataclasses.field(default_factory=dict)  # per stage: baseline, one_shot, pruned, qat, int8
    test: dict = dataclasses.field(default_factory=dict)  # baseline/int8 {accuracy, ci95, n}, delta {..., p_value}
    baseline_training: dict = dataclasses.field(default_factory=dict)  # trained_here, epochs, best_epoch, rule
    compute: dict = dataclasses.field(default_factory=dict)  # MACs per image of the .tflite graph and of the fp32 model
    micro: dict = dataclasses.field(default_factory=dict)  # the .tflite on TensorFlow Lite Micro (export/micro.py)
    speed: dict = dataclasses.field(default_factory=dict)  # latency and throughput beside fp32 (stages.measure_speed)

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
        a, s, v = self.accuracy, self.sizes, self.validation
        pct = lambda x: f"{100 * x:.2f}%"  # noqa: E731

        def with_ci(key):
            figures = self.test.get(key, {})
            ci = figures.get("ci95")
            return pct(a[key]) + (f"  (95% CI {pct(ci[0])}-{pct(ci[1])}, n={figures['n']:,})" if ci else "")

        delta = self.test.get("delta", {})
        rows = [("data", f"{self.dataset.get('source', '')}; {self.dataset.get('train', 0):,} train / "
                         f"{self.dataset.get('validation', 0):,} validation / {self.dataset.get('test', 0):,} test")]
        if self.baseline_training:
            b = self.baseline_training
            rows.append(("baseline training", b.get("rule", "") + (f"; {b['epochs']} epochs run, best epoch "
                                                                   f"{b['best_epoch']}" if b.get("epochs") else "")))
        rows += [(f"validation accuracy {stage}", pct(v[stage])) for stage in ("baseline", "one_shot", "pruned",
                                                                               "qat", "int8") if stage in v]
        rows += [
            ("test accuracy fp32 baseline", with_ci("baseline")),
            ("test accuracy int8 .tflite", with_ci("int8")),
            ("change vs baseline (test)", f"{100 * (a['int8'] - a['baseline']):+.2f} points"
             + (f"  (McNemar exact p={delta['p_value']:.3g})" if "p_value" in delta else "")),
            ("sparsity", f"{self.sparsity['overall']:.3f} of the pruned kernels"
                         + (f"; {self.prune['model']['sparsity']:.3f} of all {self.prune['model']['params']:,} weights"
                            if self.prune.get("model") else "")),
            *([("MACs per image (int8 .tflite)", f"{self.compute['macs']:,} ({self.compute['nonzero_macs']:,} on "
               f"non-zero weights); fp32 baseline {self.compute['fp32_macs']:,}")] if self.compute else []),
            *([("TensorFlow Lite Micro", micro_text(self.micro))] if self.micro else []),
            *([("speed (LiteRT, this machine)", speed_text(self.speed))] if self.speed else []),
            ("fp32 bytes", f"{s['fp32_bytes']:,}"),
            (".tflite bytes", f"{s['tflite_bytes']:,}"),
            ("gzip -9 bytes", f"{s['gzip_bytes']:,}"),
            ("entropy-coded bytes", f"{s['entropy_bytes']:,}"),
            ("compression ratio", f"{s['compression_ratio']:.1f}x  ({s['ratio_formula']})"),
            ("entropy-coded ratio", f"{s['entropy_ratio']:.1f}x"),
            ("seconds", ", ".join(f"{k} {x:.1f}" for k, x in self.seconds.items())),
        ]
        return rows


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
