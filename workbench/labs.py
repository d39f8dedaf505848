"""Self-checks for the classroom labs: each compares a student's answer with what the core computes.

A check returns a CheckResult; a notebook shows it (✓ or ✗ with a hint). Nothing here prints.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from workbench.pruning.masks import prune_count
from workbench.quantization.fake_quant import weight_levels


@dataclasses.dataclass
class CheckResult:
    ok: bool
    message: str

    def __str__(self) -> str:
        return ("✓ " if self.ok else "✗ ") + self.message

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.ok else "#c00"
        return f"<p style='color:{color};font-weight:bold'>{self}</p>"

    def __bool__(self) -> bool:
        return self.ok


def _number(answer):
    try:
        return float(answer)
    except (TypeError, ValueError):
        return None


def check_pruned_count(answer, params: int, sparsity: float) -> CheckResult:
    """How many of ``params`` weights does ``sparsity`` remove?"""
    truth = prune_count(params, sparsity)
    value = _number(answer)
    if value is None:
        return CheckResult(False, f"Give a number. Received: {answer!r}")
    if int(value) == truth:
        return CheckResult(True, f"Right: {sparsity:.0%} of {params:,} is {truth:,} weights.")
    return CheckResult(False, f"Not quite: sparsity is the fraction removed, so multiply {params:,} by {sparsity}.")


def check_levels(answer, bits: int) -> CheckResult:
    """How many distinct values does a symmetric narrow-range ``bits`` weight quantizer have?"""
    truth = weight_levels(bits)
    value = _number(answer)
    if value is not None and int(value) == truth:
        return CheckResult(True, f"Right: {bits} bits give 2^{bits} - 1 = {truth} symmetric levels (zero included).")
    return CheckResult(False, f"Not quite: symmetric quantizers drop one code so that the range is +/- equal. "
                              f"Think 2^{bits} - 1.")


def check_most_sensitive(answer, frame, sparsity: float) -> CheckResult:
    """Which layer loses the most accuracy when pruned alone to ``sparsity``? (frame: sensitivity_scan output)"""
    rows = frame[np.isclose(frame.sparsity, sparsity)]
    if rows.empty:
        return CheckResult(False, f"The scan has no sparsity {sparsity}; scan it first.")
    truth = rows.sort_values("accuracy").iloc[0].layer
    if answer == truth:
        return CheckResult(True, f"Right: {truth} drops to {rows.accuracy.min():.1%} at {sparsity:.0%}.")
    return CheckResult(False, f"Look again at the accuracies at {sparsity:.0%}: the lowest is not {answer!r}.")


def check_better(answer: str, first: float, second: float, first_name: str, second_name: str) -> CheckResult:
    """Which of two measured accuracies is higher? ``answer`` names one of them."""
    truth = first_name if first >= second else second_name
    if answer == truth:
        return CheckResult(True, f"Right: {first_name} {first:.2%} vs {second_name} {second:.2%}.")
    return CheckResult(False, f"Compare the numbers again: {first_name} {first:.2%}, {second_name} {second:.2%}.")


def check_ratio(answer, fp32_bytes: int, gzip_bytes: int, tolerance: float = 0.05) -> CheckResult:
    """The compression ratio as the workbench defines it: fp32 bytes / gzip bytes."""
    truth = fp32_bytes / gzip_bytes
    value = _number(answer)
    if value is not None and abs(value - truth) <= tolerance * truth:
        return CheckResult(True, f"Right: {fp32_bytes:,} / {gzip_bytes:,} = {truth:.1f}x.")
    return CheckResult(False, "Divide the fp32 size by the gzip size of the int8 .tflite.")


def check_beats(ratio: float, delta_points: float, anchor_ratio: float, anchor_delta: float, label: str) -> CheckResult:
    """Does a run beat a published point (smaller and at least as accurate)?"""
    if ratio >= anchor_ratio and delta_points >= anchor_delta:
        return CheckResult(True, f"Beats {label}: {ratio:.1f}x at {delta_points:+.2f} points "
                                 f"(vs {anchor_ratio:.1f}x at {anchor_delta:+.2f}).")
    return CheckResult(False, f"Does not beat {label} yet: {ratio:.1f}x at {delta_points:+.2f} points "
                              f"(vs {anchor_ratio:.1f}x at {anchor_delta:+.2f}). More epochs or sparsity may help.")


def check_count(answer, truth: int, what: str) -> CheckResult:
    """A count the student reads off a report (e.g. how many BatchNorm layers were folded)."""
    value = _number(answer)
    if value is not None and int(value) == int(truth):
        return CheckResult(True, f"Right: {int(truth)} {what}.")
    return CheckResult(False, f"Not quite: count the {what} in the report.")
