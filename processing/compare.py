"""Side-by-side comparison of the latest pipeline runs: a text table of params and metrics, and a bar chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.entities import Run

from processing import tracking
from processing.metrics.registry import METRICS

# Generation-confidence metrics on the same [0, 1] scale, charted beside the answer and retrieval metrics.
CONFIDENCE_CHARTED = (
    "mean_sequence_confidence",
    "mean_decision_label_confidence",
    "confidence_auroc",
    "confidence_ece",
    "flagged_answer_share",
)


def latest_runs(experiment_name: str, last: int) -> list[Run]:
    client = tracking.configure()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{tracking.ROLE_TAG}` = '{tracking.PIPELINE_ROLE}'",
        order_by=["attributes.start_time DESC"],
        max_results=last,
    )


def table(runs: list[Run]) -> str:
    """Rows: status, every param, every metric; columns: runs (oldest first). Differing params are marked *."""
    runs = list(reversed(runs))
    params = sorted({k for r in runs for k in r.data.params})
    metrics = sorted({k for r in runs for k in r.data.metrics})
    rows = [["", *(r.info.run_name for r in runs)], ["status", *(r.info.status for r in runs)]]
    for key in params:
        values = [r.data.params.get(key, "") for r in runs]
        rows.append([f"{key}{' *' if len(set(values)) > 1 else ''}", *values])
    rows += [
        [key, *(f"{r.data.metrics[key]:.4f}" if key in r.data.metrics else "missing" for r in runs)] for key in metrics
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def draw_bars(axes: Any, runs: list[Run], names: list[str]) -> None:
    """One bar per run and metric; a metric a run lacks gets no bar but a "missing" mark, never a 0."""
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        present = [(n + i * width, run.data.metrics[m]) for n, m in enumerate(names) if m in run.data.metrics]
        bars = axes.bar([x for x, _ in present], [v for _, v in present], width, label=run.info.run_name)
        for n, metric in enumerate(names):
            if metric not in run.data.metrics:
                colour = bars.patches[0].get_facecolor() if bars.patches else "grey"
                axes.text(n + i * width, 0.01, "missing", rotation=90, ha="center", va="bottom", color=colour)
    axes.set_xticks([n + width * (len(runs) - 1) / 2 for n in range(len(names))], names, rotation=20)
    axes.set(ylim=(0, 1), ylabel="score", title="Pipeline runs compared")
    axes.legend(fontsize=8)


def chart(runs: list[Run], path: Path) -> Path:
    """Grouped bars of the evaluation and generation-confidence metrics per run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    runs = list(reversed(runs))
    names = [m for m in (*METRICS, *CONFIDENCE_CHARTED) if any(m in r.data.metrics for r in runs)]
    figure, axes = plt.subplots(figsize=(max(6, 1.4 * len(names) * max(1, len(runs)) / 2), 4))
    draw_bars(axes, runs, names)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
