"""Run-level confidence metrics on hand-checkable tables, correctness labels, and what reaches MLflow."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from processing.confidence.assessment import NO_LOGPROBS
from processing.metrics.confidence import (
    CONFIDENCE_METRICS,
    PRUNING_METRICS,
    correctness_label,
    question_columns,
    summarize,
)
from processing.stages.evaluate import _log_confidence


def answer(
    confidence=None, *, label=None, decision="yes", route="accepted", retries=0, flags=0, pruning=None, abstained=False
):
    """An answers-file row as the retrieval stage writes it (confidence None: generator gave no log-probs)."""
    record = {
        "confidence_available": confidence is not None,
        "confidence_unavailable_reason": None if confidence is not None else NO_LOGPROBS,
        "answer_sequence_confidence": confidence,
        "decision_label_confidence": label,
        "reasoning_confidence": None,
        "prompt_clarity": confidence,
        "flagged_span_count": flags if confidence is not None else None,
    }
    return {
        "confidence": record,
        "confidence_route": route,
        "retries": retries,
        "final_top_k": 5 * 2**retries,
        "abstained": abstained,
        "abstain_reason": "low" if abstained else None,
        "candidate_decision": decision,
        "pruning": pruning,
    }


def table_row(row, gold="yes", judge=None, scores=None, baseline=None):
    metrics = scores or {"token_f1": 0.5, "answer_embedding_cosine": 0.5, "decision_accuracy": 1.0}
    return metrics | question_columns(row, correctness_label(row, gold, judge), baseline)


def test_labels_come_from_the_judge_else_from_the_decision() -> None:
    assert correctness_label(answer(0.9), "no", 4) == (True, "judge")  # answer_correctness/v1: 4 of 5 is correct
    assert correctness_label(answer(0.9), "yes", 3) == (False, "judge")  # 3 still has omissions or errors
    assert correctness_label(answer(0.9), "no", None) == (False, "decision_match")
    # the judge scored the abstention text, so the abstained-on answer is labelled by its decision
    assert correctness_label(answer(0.2, abstained=True), "yes", 1) == (True, "decision_match")
    assert correctness_label(answer(decision=None), "yes", None) == (None, "unlabelled")


def test_aggregates_auroc_and_ece_on_a_hand_checked_table() -> None:
    table = [
        table_row(answer(0.9, flags=1), gold="yes"),  # correct
        table_row(answer(0.55, retries=1), gold="yes"),  # correct after a retry
        table_row(answer(0.65, decision="no", flags=2), gold="yes"),  # wrong
        table_row(answer(0.3, route="abstain", retries=1, abstained=True), gold="no"),  # wrong candidate
    ]
    summary = summarize(table, prune_contexts=False)
    metrics = summary.metrics
    assert metrics["mean_sequence_confidence"] == pytest.approx((0.9 + 0.55 + 0.65 + 0.3) / 4)
    assert metrics["flagged_answer_share"] == 0.5
    assert metrics["confidence_retry_rate"] == 0.5
    assert metrics["confidence_abstain_rate"] == 0.25
    assert metrics["confidence_labelled_count"] == 4
    # correct {0.9, 0.55} vs incorrect {0.65, 0.3}: 3 of 4 pairs ordered right
    assert metrics["confidence_auroc"] == pytest.approx(0.75)
    # one answer per bin: |1-0.9| + |1-0.55| + |0-0.65| + |0-0.3|, over 4
    assert metrics["confidence_ece"] == pytest.approx((0.1 + 0.45 + 0.65 + 0.3) / 4)
    assert summary.label_sources == ("decision_match",)
    assert summary.skipped["mean_reasoning_confidence"] == "no answer had a reasoning span"
    assert set(PRUNING_METRICS) <= set(summary.skipped)
    assert summary.skipped["prompt_tokens_saved_total"] == "prune_contexts is off"


def test_each_measure_gets_its_own_separation_and_the_acted_on_one_names_the_run_metrics() -> None:
    table = [
        table_row(answer(0.9, label=0.6), gold="yes"),  # correct
        table_row(answer(0.55, label=0.95), gold="yes"),  # correct
        table_row(answer(0.65, label=0.4, decision="no"), gold="yes"),  # wrong
        table_row(answer(0.3, label=None, decision="no"), gold="yes"),  # wrong, no leading label
    ]
    summary = summarize(table, prune_contexts=False, measure="decision_label")
    metrics = summary.metrics
    assert metrics["sequence_confidence_auroc"] == pytest.approx(0.75)  # {0.9, 0.55} vs {0.65, 0.3}
    assert metrics["decision_label_auroc"] == pytest.approx(1.0)  # {0.6, 0.95} vs {0.4}
    assert metrics["confidence_auroc"] == metrics["decision_label_auroc"]  # the measure the agent acted on
    assert metrics["confidence_ece"] == metrics["decision_label_ece"] == pytest.approx((0.4 + 0.05 + 0.4) / 3)
    assert metrics["mean_decision_label_confidence"] == pytest.approx((0.6 + 0.95 + 0.4) / 3)
    assert metrics["confidence_labelled_count"] == 3  # answers the acted-on measure scored, not all four
    assert summary.labelled == ((0.6, True), (0.95, True), (0.4, False))


def test_one_class_skips_auroc_with_the_reason_but_keeps_ece() -> None:
    summary = summarize([table_row(answer(0.9)), table_row(answer(0.7))], prune_contexts=False)
    assert "confidence_auroc" not in summary.metrics
    assert summary.skipped["confidence_auroc"] == "AUROC needs both correct and incorrect answers; all 2 are correct"
    assert summary.metrics["confidence_ece"] == pytest.approx(0.2)


def test_without_log_probabilities_every_confidence_metric_is_skipped_never_zero() -> None:
    summary = summarize([table_row(answer()), table_row(answer())], prune_contexts=False)
    assert summary.metrics == {}
    assert summary.calibration is None
    for name in CONFIDENCE_METRICS:
        assert summary.skipped[name] == f"confidence unavailable ({NO_LOGPROBS})"


def test_pruning_tokens_saved_and_answer_metric_change() -> None:
    def pruned(saved, kept, f1, baseline_f1, abstained=False):
        pruning = {"skipped": None, "contexts_in": 3, "contexts_kept": kept, "prompt_tokens_saved": saved}
        pruning |= {"token_count_method": "generator", "baseline_decision": "yes"}
        baseline = {"token_f1": baseline_f1, "answer_embedding_cosine": 0.5, "decision_accuracy": 1.0}
        scores = {"token_f1": f1, "answer_embedding_cosine": 0.7, "decision_accuracy": 1.0}
        return table_row(answer(0.8, pruning=pruning, abstained=abstained), scores=scores, baseline=baseline)

    skipped = {"skipped": "fewer than two contexts", "contexts_in": 1}
    table = [
        pruned(10, 2, 0.5, 0.4),
        pruned(30, 1, 0.2, 0.4),
        pruned(50, 1, 0.0, 0.9, True),
        table_row(answer(0.8, pruning=skipped)),
    ]
    metrics = summarize(table, prune_contexts=True).metrics
    assert metrics["prompt_tokens_saved_total"] == 90
    assert metrics["prompt_tokens_saved_mean"] == 30
    assert metrics["pruned_context_share"] == pytest.approx(1 - 4 / 9)
    # compared where the pruned answer was returned (not the abstained one): (0.1 - 0.2) / 2
    assert metrics["pruning_token_f1_change"] == pytest.approx(-0.05)
    assert metrics["pruning_answer_embedding_cosine_change"] == pytest.approx(0.2)
    assert metrics["pruning_decision_accuracy_change"] == 0.0
    nothing = summarize([table_row(answer(0.8, pruning=skipped))], prune_contexts=True)
    assert nothing.skipped["prompt_tokens_saved_total"] == "no question was pruned (fewer than two contexts)"


def test_calibration_artifacts_reach_mlflow(mlflow_store, tmp_path) -> None:
    table = [table_row(answer(0.9)), table_row(answer(0.4, decision="no"))]
    summary = summarize(table, prune_contexts=False)
    mlflow.set_tracking_uri(mlflow_store)
    mlflow.set_experiment("confidence-artifacts")
    with mlflow.start_run() as run:
        _log_confidence(summary, tmp_path)
    client = MlflowClient(mlflow_store)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"calibration.json", "confidence_vs_correctness.png", "reliability_diagram.png"} <= artifacts
    assert (tmp_path / "reliability_diagram.png").read_bytes()[:4] == b"\x89PNG"
    assert client.get_run(run.info.run_id).data.params["confidence_label_source"] == "decision_match"


def test_the_run_auroc_carries_its_interval_and_counts_and_an_uninformative_one_is_said() -> None:
    table = [table_row(answer(0.9, label=0.6, flags=1), gold="yes") for _ in range(3)] + [
        table_row(answer(0.2, label=0.7, decision="no", flags=1), gold="yes") for _ in range(3)
    ]
    summary = summarize(table, prune_contexts=False, measure="decision_label")
    metrics = summary.metrics
    assert metrics["confidence_auroc"] == 0.0  # the wrong answers got the higher label probability
    assert (metrics["confidence_auroc_correct_count"], metrics["confidence_auroc_incorrect_count"]) == (3, 3)
    assert metrics["confidence_auroc_ci_low"] == metrics["confidence_auroc_ci_high"] == 0.0
    assert metrics["sequence_confidence_auroc_ci_low"] == 1.0
    assert summary.warnings == (
        "flagged_answer_share 1.00: nearly every answer has a low-confidence token flag, so the flags carry no "
        "information on this run",
        "decision_label_auroc (the measure the agent acts on) 0.000, 95% interval [0.000, 0.000] on 3 correct and "
        "3 incorrect answers: the interval lies below 0.5 (chance), so this confidence signal is not informative "
        "on this run",
    )
