"""Figures of the confidence signal: confidence against correctness, and the reliability diagram."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from processing.confidence.measures import CalibrationReport

CONFIDENCE_PLOT = "confidence_vs_correctness.png"
RELIABILITY_PLOT = "reliability_diagram.png"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def confidence_vs_correctness(labelled: Sequence[tuple[float, bool]], auroc: float | None) -> Any:
    """Each answer's confidence on x, correct/incorrect on y (jittered so equal points stay visible)."""
    plt = _pyplot()
    confidences = np.array([c for c, _ in labelled])
    correct = np.array([ok for _, ok in labelled], dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(labelled))
    figure, axes = plt.subplots(figsize=(7, 3.5))
    colours = np.where(correct == 1.0, "#2e7d32", "#c62828")
    axes.scatter(confidences, correct + jitter, c=colours, alpha=0.7, s=24)
    axes.set_yticks([0, 1], ["incorrect", "correct"])
    title = "Answer confidence vs correctness" + (f" (AUROC {auroc:.3f})" if auroc is not None else "")
    axes.set(xlim=(0, 1), ylim=(-0.4, 1.4), xlabel="answer sequence confidence", title=title)
    figure.tight_layout()
    return figure


def reliability_diagram(report: CalibrationReport) -> Any:
    """Accuracy per confidence bin against the diagonal of perfect calibration; bar labels are bin counts."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    filled = [b for b in report.bins if b.count]
    bars = axes.bar(
        [(b.lower + b.upper) / 2 for b in filled],
        [b.accuracy for b in filled],
        width=[b.upper - b.lower for b in filled],
        edgecolor="#1b3a5c",
        color="#3b6ea8",
        alpha=0.8,
    )
    axes.bar_label(bars, labels=[str(b.count) for b in filled], fontsize=8)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1.05),
        xlabel="answer confidence",
        ylabel="accuracy",
        title=f"Reliability (ECE {report.expected_calibration_error:.3f}, n={report.n})",
    )
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure
