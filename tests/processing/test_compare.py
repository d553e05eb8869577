"""`compare` shows a metric a run lacks as missing, in the table and in the chart, never as 0."""

import matplotlib
from mlflow.entities import Metric, Run, RunData, RunInfo

from processing.compare import draw_bars, table

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # after choosing the headless backend


def run(name: str, metrics: dict[str, float]) -> Run:
    info = RunInfo(name, "0", "user", "FINISHED", 0, 1, "active", run_name=name)
    return Run(info, RunData(metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()]))


def test_a_metric_a_run_lacks_is_drawn_and_printed_as_missing() -> None:
    runs = [run("judged", {"hit_at_k": 0.8, "confidence_auroc": 0.4}), run("unjudged", {"hit_at_k": 0.7})]
    figure, axes = plt.subplots()
    draw_bars(axes, runs, ["hit_at_k", "confidence_auroc"])
    heights = sorted(round(bar.get_height(), 2) for bar in axes.patches)
    assert heights == [0.4, 0.7, 0.8]  # no zero-height bar stands in for the missing value
    assert [t.get_text() for t in axes.texts] == ["missing"]
    plt.close(figure)
    assert "confidence_auroc  0.4000    missing" in table(list(reversed(runs)))
