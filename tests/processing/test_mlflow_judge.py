"""MLflow's judge metrics on an OpenAI-compatible server and on any transport: requests, bounded concurrency,
coverage, and the quality gate that refuses a run whose judge scored too few rows."""

from __future__ import annotations

import threading
import time
import warnings

import pytest

from processing.backends import factory
from processing.backends.mlflow_judge import JUDGE_METRICS, MlflowJudge
from processing.config import RunConfig
from processing.interfaces import JudgeInput
from processing.metrics.gate import evaluate_gate
from processing.metrics.judge import summarize_judge
from tests.processing.chat_server import serving
from tests.processing.recorded import payload

pytestmark = pytest.mark.mlflow  # MLflow's judge metrics: run on the image's client too

ROWS = [JudgeInput(f"Question {i}?", f"Answer {i}.", (f"Context {i}.",), f"Reference {i}.") for i in range(4)]


def completion(text: str) -> dict:
    response = payload("openai_chat_logprobs")
    response["choices"][0]["message"]["content"] = text
    return response


def test_openai_compatible_judge_sends_greedy_requests_with_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", "secret-key")
    with serving(lambda body: (200, completion("score: 4\njustification: Mostly right."))) as server:
        config = RunConfig(
            judge="openai", judge_url=server.base_url, judge_model="judge-7b", judge_api_key_env="JUDGE_KEY"
        )
        judge = factory.build_judge(config)
        scored = judge.score(ROWS)
    assert {name: v.scores for name, v in scored.items()} == dict.fromkeys(JUDGE_METRICS, (4, 4, 4, 4))
    assert len(server.received) == len(ROWS) * len(JUDGE_METRICS)
    for path, headers, body in server.received:
        assert path == "/v1/chat/completions"
        assert headers["Authorization"] == "Bearer secret-key"
        assert (body["model"], body["temperature"], body["max_tokens"]) == ("judge-7b", 0.0, 200)


def test_a_transient_server_error_is_retried() -> None:
    answers = iter([(503, {"error": "busy"})])

    def respond(body: dict) -> tuple[int, object]:
        return next(answers, (200, completion("score: 5\njustification: Same.")))

    with serving(respond) as server:
        judge = factory.build_judge(RunConfig(judge="openai", judge_url=server.base_url, judge_model="m"))
        scored = judge.score(ROWS[:1])
    assert len(server.received) == len(JUDGE_METRICS) + 1
    assert all(v.scores == (5,) for v in scored.values())


def test_calls_in_flight_never_exceed_the_bound() -> None:
    lock, running, peak = threading.Lock(), [0], [0]

    def transport(messages, max_tokens):  # type: ignore[no-untyped-def]
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return "score: 3\njustification: Partly."

    judge = MlflowJudge(transport, model_id="t", provider="test", max_in_flight=3)
    judge.score(ROWS * 3)
    assert peak[0] == 3


def weak_transport(messages, max_tokens):  # type: ignore[no-untyped-def]
    """Like a tiny model: a gradeable reply for the first question only."""
    return "score: 2\njustification: Weak." if "Answer 0." in messages[0].content else "Sure! The answer is good."


def test_coverage_is_logged_per_metric_and_the_gate_refuses_a_thinly_judged_run() -> None:
    summary = summarize_judge(MlflowJudge(weak_transport, model_id="tiny", provider="local"), ROWS)
    for name in JUDGE_METRICS:
        assert summary.metrics[f"{name}/coverage"] == 0.25
        assert summary.metrics[f"{name}/mean"] == 2.0  # the mean of the one row that parsed...
    assert summary.metrics["judge_coverage"] == 0.25  # ...and how little that is
    assert summary.columns[1]["faithfulness/v1/score"] is None
    assert summary.columns[1]["faithfulness/v1/justification"].startswith("Failed to extract score")
    assert summary.correctness == [2, None, None, None]
    metrics = {"hit_at_k": 1.0, "mrr": 1.0, "answer_embedding_cosine": 1.0} | summary.metrics
    config = RunConfig(judge="local", min_judge_coverage=0.9)
    assert evaluate_gate(metrics, config).failures == ["judge_coverage 0.2500 < min_judge_coverage 0.9000"]
    assert evaluate_gate(metrics | {"judge_coverage": 0.95}, config).failures == []
    assert evaluate_gate({k: v for k, v in metrics.items() if k != "judge_coverage"}, config).failures == [
        "judge_coverage missing (min_judge_coverage 0.9000)"
    ]


def off_scale_transport(messages, max_tokens):  # type: ignore[no-untyped-def]
    """A grade outside the rubrics' 1-5 scale for the first answer, 4 for the others."""
    return (
        "score: 10\njustification: Off the scale."
        if "Answer 0." in messages[0].content
        else "score: 4\njustification: Fine."
    )


def test_a_score_off_the_1_to_5_scale_counts_in_neither_coverage_nor_the_aggregates() -> None:
    summary = summarize_judge(MlflowJudge(off_scale_transport, model_id="tiny", provider="local"), ROWS)
    for name in JUDGE_METRICS:
        assert summary.metrics[f"{name}/coverage"] == 0.75
        assert summary.metrics[f"{name}/mean"] == 4.0  # MLflow's own aggregate would be (10 + 4 * 3) / 4 = 5.5
        assert summary.metrics[f"{name}/variance"] == 0.0
        assert summary.metrics[f"{name}/p90"] == 4.0
    assert summary.columns[0]["faithfulness/v1/score"] is None


def test_without_a_judge_the_judge_metrics_are_skipped_and_not_gated() -> None:
    summary = summarize_judge(None, ROWS)
    assert summary.metrics == {}
    assert summary.skipped["answer_similarity/v1/mean"].startswith("not judged: judge=none")
    metrics = {"hit_at_k": 1.0, "mrr": 1.0, "answer_embedding_cosine": 1.0}
    assert evaluate_gate(metrics, RunConfig()).failures == []


def test_a_judge_that_scores_nothing_warns_nothing_and_gets_no_mean() -> None:
    """MLflow's deprecation of its v1 metrics and its aggregates over no scored row stay off the console."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = summarize_judge(MlflowJudge(lambda m, t: "I cannot grade.", model_id="tiny", provider="local"), ROWS)
    assert [str(w.message) for w in caught] == []
    assert summary.metrics["judge_coverage"] == 0.0
    assert "answer_similarity/v1/mean" not in summary.metrics
    assert summary.skipped["answer_similarity/v1/mean"].startswith("no row scored")
