"""The quality gate says what it checked, against which threshold, and what it could not check."""

from processing.config import RunConfig
from processing.metrics.gate import describe, evaluate_gate

METRICS = {"hit_at_k": 0.8, "mrr": 0.6, "answer_embedding_cosine": 0.7}


def test_a_run_without_thresholds_says_nothing_was_gated() -> None:
    gate = evaluate_gate(METRICS, RunConfig()).record()
    assert gate["verdict"] == "nothing gated"
    assert gate["checked"] == []
    assert gate["not_checked"]["hit_at_k"] == "no threshold (min_hit_at_k is 0)"
    assert describe(gate)[0].startswith("quality gate: nothing gated (no metric has a threshold")


def test_a_judge_that_did_not_run_is_not_judged_not_a_failure() -> None:
    gate = evaluate_gate(METRICS, RunConfig(min_hit_at_k=0.5, min_judge_coverage=0.9))
    assert gate.verdict == "passed"
    assert gate.failures == []
    assert gate.not_checked["judge_coverage"].startswith("not judged: judge=none")
    assert [c.metric for c in gate.checked] == ["hit_at_k"]
    lines = describe(gate.record())
    assert lines[1] == "  checked: hit_at_k 0.8000 >= min_hit_at_k 0.5000"
    assert any(line.startswith("  not checked: judge_coverage: not judged") for line in lines)


def test_a_configured_judge_is_gated_on_coverage_and_a_missing_metric_fails() -> None:
    config = RunConfig(judge="local", min_mrr=0.7)
    gate = evaluate_gate(METRICS, config)
    assert gate.verdict == "failed"
    assert gate.failures == ["mrr 0.6000 < min_mrr 0.7000", "judge_coverage missing (min_judge_coverage 0.9000)"]
    assert evaluate_gate(METRICS | {"mrr": 0.7, "judge_coverage": 0.95}, config).verdict == "passed"
