"""MLflow's judge metrics graded by Bedrock through Converse, on a Stubber-backed client: the requests MLflow's
prompts turn into, how replies parse, and the retry policy on throttling (the one retry layer)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from processing.backends.bedrock_judge import BedrockConverseTransport
from processing.backends.mlflow_judge import JUDGE_METRICS, MlflowJudge
from processing.interfaces import Judge, JudgeInput
from processing.retry import RetryPolicy
from tests.processing.cloud.conftest import fake_session

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ROW = JudgeInput(
    question="Does aspirin reduce fever?",
    answer="Yes, aspirin reduces fever.",
    contexts=("Aspirin is an antipyretic.", "Aspirin inhibits COX enzymes."),
    ground_truth="Yes. Aspirin lowers body temperature in fever.",
)
REQUEST = {
    "modelId": MODEL,
    "messages": [{"role": "user", "content": [{"text": ANY}]}],
    "inferenceConfig": {"maxTokens": 200, "temperature": 0.0},  # MLflow's judge parameters
}


@pytest.fixture
def bedrock() -> Any:
    return fake_session().client("bedrock-runtime")


@pytest.fixture
def prompts(bedrock: Any) -> list[str]:
    """The user prompt of every Converse request, in call order."""
    sent: list[str] = []
    bedrock.meta.events.register(
        "before-parameter-build.bedrock-runtime.Converse",
        lambda params, **_: sent.append(params["messages"][0]["content"][0]["text"]),
    )
    return sent


def reply(text: str) -> dict[str, Any]:
    """A Converse response as documented: output.message.content[].text, stopReason, usage, metrics."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 710, "outputTokens": 24, "totalTokens": 734},
        "metrics": {"latencyMs": 412},
    }


def judge(bedrock: Any, retry: RetryPolicy) -> MlflowJudge:
    transport = BedrockConverseTransport(bedrock, model_id=MODEL, retry=retry)
    return MlflowJudge(transport, model_id=MODEL, provider="bedrock", max_in_flight=1)  # one call at a time: ordered


def test_each_metric_sends_mlflows_prompt_and_parses_score_and_justification(
    bedrock: Any, retry: RetryPolicy, prompts: list[str]
) -> None:
    grader = judge(bedrock, retry)
    assert isinstance(grader, Judge)
    with Stubber(bedrock) as stubber:
        for score in (5, 4, 3, 5):
            stubber.add_response("converse", reply(f"score: {score}\njustification: Graded {score}."), REQUEST)
        scored = grader.score([ROW])
        stubber.assert_no_pending_responses()
    assert {name: (v.scores, v.justifications) for name, v in scored.items()} == {
        "answer_similarity/v1": ((5,), ("Graded 5.",)),
        "answer_correctness/v1": ((4,), ("Graded 4.",)),
        "answer_relevance/v1": ((3,), ("Graded 3.",)),
        "faithfulness/v1": ((5,), ("Graded 5.",)),
    }
    similarity, correctness, relevance, faithfulness = prompts
    expected = {
        "answer_similarity": (similarity, [ROW.ground_truth]),
        "answer_correctness": (correctness, [ROW.question, ROW.ground_truth]),
        "answer_relevance": (relevance, [ROW.question]),
        "faithfulness": (faithfulness, ["Aspirin is an antipyretic.\n\nAspirin inhibits COX enzymes."]),
    }
    for name, (prompt, parts) in expected.items():
        assert name in prompt
        assert all(part in prompt for part in parts), name
    assert ROW.question not in similarity  # MLflow's similarity rubric grades against the reference only
    assert all(ROW.answer in prompt for prompt in prompts)


def test_unparsable_and_off_scale_replies_leave_the_row_unscored(bedrock: Any, retry: RetryPolicy) -> None:
    replies = [
        "The answer looks right to me.",
        "score: 7\njustification: Off scale.",
        '{"score": 2, "justification": "Weak."}',
    ]
    with Stubber(bedrock) as stubber:
        for text in [*replies, "score: 1\njustification: No."]:
            stubber.add_response("converse", reply(text), REQUEST)
        scored = judge(bedrock, retry).score([ROW])
    assert [scored[name].scores[0] for name in JUDGE_METRICS] == [None, None, 2, 1]
    assert scored["answer_similarity/v1"].justifications[0].startswith("Failed to extract score and justification")


def test_throttling_is_retried_by_the_policy_and_access_denied_is_not(
    bedrock: Any, retry: RetryPolicy, sleeps: list[float]
) -> None:
    with Stubber(bedrock) as stubber:
        stubber.add_client_error("converse", "ThrottlingException", http_status_code=429)
        stubber.add_response("converse", reply("score: 4\njustification: Close."), REQUEST)
        stubber.add_client_error("converse", "AccessDeniedException", "no model access", http_status_code=403)
        for _ in range(2):
            stubber.add_response("converse", reply("score: 3\njustification: Partly."), REQUEST)
        scored = judge(bedrock, retry).score([ROW])
        stubber.assert_no_pending_responses()
    assert len(sleeps) == 1  # one backoff, for the throttled call only
    assert scored["answer_similarity/v1"].scores == (4,)
    assert scored["answer_correctness/v1"].scores == (None,)
    assert "AccessDeniedException" in scored["answer_correctness/v1"].justifications[0]
    assert scored["faithfulness/v1"].scores == (3,)
