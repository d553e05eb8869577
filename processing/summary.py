"""The few lines a run ends with: key metrics, what they cannot say on this run, the gate's verdict and reasons,
and where to look for the rest. Every number comes from the evaluation's report.json, which holds them all."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from processing.datasets import DECISIONS
from processing.metrics.gate import describe
from processing.metrics.judge import JUDGE_COVERAGE
from processing.stages.files import PER_QUESTION_FILE
from processing.tracking import LOCAL_TRACKING_URI, tracking_uri

KEY_METRICS = {
    "retrieval": ("hit_at_k", "mrr", "ndcg_at_k"),
    "answers": ("token_f1", "answer_embedding_cosine"),
}
JUDGED = ("answer_correctness/v1/mean", "faithfulness/v1/mean", JUDGE_COVERAGE)


def _values(metrics: Mapping[str, float], skipped: Mapping[str, str], names: tuple[str, ...]) -> str:
    return "  ".join(
        f"{name} {metrics[name]:.4f}" if name in metrics else f"{name} missing ({skipped.get(name, 'not reported')})"
        for name in names
    )


def _decisions(metrics: Mapping[str, float]) -> str:
    predicted = ", ".join(f"{d} {metrics.get(f'decision_predicted_{d}_share', 0.0):.2f}" for d in (*DECISIONS, "none"))
    return (
        f"decision_accuracy {metrics['decision_accuracy']:.4f} (always the majority label: "
        f"{metrics['decision_accuracy_majority_baseline']:.4f}; answers said {predicted})"
    )


def _confidence(confidence: Mapping[str, float], skipped: Mapping[str, str], measure: str) -> str:
    if "confidence_auroc" not in confidence:
        return f"confidence_auroc ({measure}) missing: {skipped.get('confidence_auroc', 'not reported')}"
    text = f"confidence_auroc ({measure}) {confidence['confidence_auroc']:.3f}"
    if "confidence_auroc_ci_low" in confidence:
        low, high = confidence["confidence_auroc_ci_low"], confidence["confidence_auroc_ci_high"]
        text += f", 95% interval [{low:.3f}, {high:.3f}]"
    counts = (confidence["confidence_auroc_correct_count"], confidence["confidence_auroc_incorrect_count"])
    return text + f" on {counts[0]:.0f} correct / {counts[1]:.0f} incorrect"


def _judge(metrics: Mapping[str, float], skipped: Mapping[str, str]) -> str:
    if JUDGE_COVERAGE not in metrics:
        return skipped.get(JUDGE_COVERAGE, "not reported")
    return _values(metrics, skipped, JUDGED)


def summary_lines(report: Mapping[str, Any], report_path: Path) -> list[str]:
    config, metrics, skipped = report["run_config"], report["metrics"], report["skipped_metrics"]
    confidence = report["confidence_metrics"]
    lines = [
        f"run {report['mlflow_parent_run_id']} ({config['chunking_strategy']}): {report['question_count']} questions,"
        f" generator {config['generator']}, judge {config['judge']}",
        *(f"  {group:<11}{_values(metrics, skipped, names)}" for group, names in KEY_METRICS.items()),
        f"  {'decisions':<11}{_decisions(metrics)}",
        f"  {'confidence':<11}{_confidence(confidence, skipped, config['confidence_measure'])}",
        f"  {'judge':<11}{_judge(metrics, skipped)}",
    ]
    if report["warnings"]:
        lines += ["what these numbers cannot say on this run:", *(f"  - {w}" for w in report["warnings"])]
    lines += describe(report["quality_gate"])
    uri = tracking_uri()
    tracking = "MLflow: `make ui`, then http://127.0.0.1:5000" if uri == LOCAL_TRACKING_URI else f"MLflow: {uri}"
    lines += [
        f"look at: {report_path} (every metric; skipped ones with the reason), "
        f"{report_path.parent / PER_QUESTION_FILE} (one row per question)",
        f"         {tracking} (experiment {report['mlflow_experiment']}, run {report['mlflow_parent_run_id']})",
    ]
    return lines
