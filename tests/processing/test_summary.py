"""The summary a run ends with, from its report: key metrics, warnings, the gate, where to look."""

from pathlib import Path

import pytest

from processing.config import RunConfig
from processing.metrics.gate import evaluate_gate
from processing.summary import summary_lines

METRICS = {
    "hit_at_k": 0.97,
    "mrr": 0.9,
    "ndcg_at_k": 0.85,
    "token_f1": 0.19,
    "answer_embedding_cosine": 0.54,
    "decision_accuracy": 0.4848,
    "decision_accuracy_majority_baseline": 0.4545,
    "decision_predicted_yes_share": 0.97,
    "decision_predicted_none_share": 0.03,
}
CONFIDENCE = {
    "confidence_auroc": 0.335,
    "confidence_auroc_ci_low": 0.158,
    "confidence_auroc_ci_high": 0.537,
    "confidence_auroc_correct_count": 16.0,
    "confidence_auroc_incorrect_count": 17.0,
}


def report(config: RunConfig, warnings: list[str]) -> dict:
    return {
        "mlflow_experiment": config.experiment_name,
        "mlflow_parent_run_id": "r1",
        "run_config": config.model_dump(),
        "metrics": METRICS,
        "confidence_metrics": CONFIDENCE,
        "skipped_metrics": {"judge_coverage": "not judged: judge=none"},
        "question_count": 33,
        "quality_gate": evaluate_gate(METRICS, config).record(),
        "warnings": warnings,
    }


def test_the_summary_shows_key_metrics_warnings_the_gate_and_where_to_look(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    lines = summary_lines(report(RunConfig(), ["the interval includes 0.5"]), Path("w/report/report.json"))
    text = "\n".join(lines)
    assert lines[0] == "run r1 (RecursiveChunker): 33 questions, generator local, judge none"
    assert "  retrieval  hit_at_k 0.9700  mrr 0.9000  ndcg_at_k 0.8500" in lines
    assert "decision_accuracy 0.4848 (always the majority label: 0.4545; answers said yes 0.97, no 0.00" in text
    assert "confidence_auroc (decision_label) 0.335, 95% interval [0.158, 0.537] on 16 correct / 17 incorrect" in text
    assert "  judge      not judged: judge=none" in lines
    assert "  - the interval includes 0.5" in lines
    assert "quality gate: nothing gated" in text
    assert lines[-2].startswith("look at: w/report/report.json")
    assert "`make ui`, then http://127.0.0.1:5000" in lines[-1]
    assert len(lines) < 20


def test_a_failed_gate_is_shown_with_its_reasons() -> None:
    lines = summary_lines(report(RunConfig(min_mrr=0.95), []), Path("report.json"))
    assert "quality gate: failed" in lines
    assert "  checked: mrr 0.9000 < min_mrr 0.9500" in lines
    assert not any(line.startswith("what these numbers cannot say") for line in lines)
