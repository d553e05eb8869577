"""Side-by-side comparison of the latest pipeline runs: a text table of params and metrics, and a bar chart."""

from __future__ import annotations

from pathlib import Path

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
    rows += [[key, *(f"{r.data.metrics[key]:.4f}" if key in r.data.metrics else "" for r in runs)] for key in metrics]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def chart(runs: list[Run], path: Path) -> Path:
    """Grouped bars of the evaluation and generation-confidence metrics per run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    runs = list(reversed(runs))
    names = [m for m in (*METRICS, *CONFIDENCE_CHARTED) if any(m in r.data.metrics for r in runs)]
    figure, axes = plt.subplots(figsize=(max(6, 1.4 * len(names) * max(1, len(runs)) / 2), 4))
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        positions = [n + i * width for n in range(len(names))]
        axes.bar(positions, [run.data.metrics.get(m, 0.0) for m in names], width, label=run.info.run_name)
    axes.set_xticks([n + width * (len(runs) - 1) / 2 for n in range(len(names))], names, rotation=20)
    axes.set(ylim=(0, 1), ylabel="score", title="Pipeline runs compared")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
