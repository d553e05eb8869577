from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from processing.backends.bedrock_judge import JUDGE_METRICS, BedrockJudge, Rubrics, parse_score
from processing.backends.errors import CloudBackendError
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


@pytest.fixture
def bedrock() -> Any:
    return fake_session().client("bedrock-runtime")


def reply(text: str) -> dict[str, Any]:
    """A Converse response as documented: output.message.content[].text, stopReason, usage, metrics."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 210, "outputTokens": 24, "totalTokens": 234},
        "metrics": {"latencyMs": 412},
    }


def judged_request(prompt: Any = ANY) -> dict[str, Any]:
    return {
        "modelId": MODEL,
        "system": [{"text": Rubrics.load().system}],
        "messages": [{"role": "user", "content": [{"text": prompt}]}],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.0},
    }


def test_faithfulness_request_is_the_rubric_with_numbered_contexts(bedrock: Any, retry: RetryPolicy) -> None:
    prompt = (
        "Property: faithfulness of the answer to the retrieved contexts (every claim must be supported by them).\n"
        "5: every claim in the answer is supported by the contexts.\n"
        "4: nearly all claims are supported; one minor claim is not.\n"
        "3: about half of the claims are supported.\n"
        "2: most claims are unsupported by the contexts.\n"
        "1: the answer is unsupported by or contradicts the contexts.\n"
        "An answer that says the contexts are insufficient, when they are, counts as fully faithful.\n"
        "\n"
        "Contexts:\n"
        "[1] Aspirin is an antipyretic.\n"
        "[2] Aspirin inhibits COX enzymes.\n"
        "\n"
        "Answer to grade: Yes, aspirin reduces fever.\n"
    )
    judge = BedrockJudge(bedrock, metrics=["faithfulness"], retry=retry)
    with Stubber(bedrock) as stubber:
        graded = reply('{"score": 5, "justification": "Supported by [1]."}')
        stubber.add_response("converse", graded, judged_request(prompt))
        assert judge.score([ROW]) == {"faithfulness": [1.0]}
        stubber.assert_no_pending_responses()
    assert judge.unparsed == {"faithfulness": 0}
    assert Rubrics.load().system.startswith("You are an impartial grader")


def test_every_metric_scores_every_row_and_unusable_replies_are_none_and_counted(
    bedrock: Any, retry: RetryPolicy
) -> None:
    replies = {
        "answer_correctness": ['{"score": 4, "justification": "Close."}', "The answer looks right to me."],
        "judge_answer_similarity": ['Here you go: {"score": 3, "justification": "Partly."}', '{"score": 1}'],
        "answer_relevance": ['{"score": 7, "justification": "Off scale."}', '{"score": "5"}'],
        "faithfulness": ['{"score": 2, "justification": "{nested} braces"}', '{"score": true}'],
    }
    judge = BedrockJudge(bedrock, retry=retry)
    with Stubber(bedrock) as stubber:
        for metric in JUDGE_METRICS:
            for text in replies[metric]:
                stubber.add_response("converse", reply(text), judged_request())
        scores = judge.score([ROW, ROW])
        stubber.assert_no_pending_responses()
    assert scores == {
        "answer_correctness": [0.75, None],
        "judge_answer_similarity": [0.5, 0.0],
        "answer_relevance": [None, None],
        "faithfulness": [0.25, None],
    }
    assert judge.unparsed == {
        "answer_correctness": 1,
        "judge_answer_similarity": 0,
        "answer_relevance": 2,
        "faithfulness": 1,
    }


def test_throttling_is_retried_then_scored(bedrock: Any, retry: RetryPolicy, sleeps: list[float]) -> None:
    judge = BedrockJudge(bedrock, metrics=["answer_relevance"], retry=retry)
    with Stubber(bedrock) as stubber:
        stubber.add_client_error("converse", "ThrottlingException", "Too many requests", 429)
        stubber.add_response("converse", reply('{"score": 5, "justification": "Direct."}'), judged_request())
        assert judge.score([ROW]) == {"answer_relevance": [1.0]}
    assert len(sleeps) == 1


def test_access_denied_fails_the_evaluation_instead_of_scoring(
    bedrock: Any, retry: RetryPolicy, sleeps: list[float]
) -> None:
    judge = BedrockJudge(bedrock, metrics=["answer_relevance"], retry=retry)
    with Stubber(bedrock) as stubber:
        stubber.add_client_error("converse", "AccessDeniedException", "no model access", 403)
        expected = f"Bedrock judge {MODEL} failed on answer_relevance: .*AccessDenied"
        with pytest.raises(CloudBackendError, match=expected):
            judge.score([ROW])
    assert sleeps == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"score": 1}', 0.0),
        ('{"score": 5}', 1.0),
        ("score: 4", None),
        ('{"score": 0}', None),
        ("{not json}", None),
        ('{"a": {"score": 5}}', None),
    ],
)
def test_parse_score(text: str, expected: float | None) -> None:
    assert parse_score(text) == expected


def test_rubrics_must_cover_every_metric(tmp_path: Path) -> None:
    path = tmp_path / "rubrics.yaml"
    path.write_text("system: grade\nmetrics:\n  faithfulness:\n    template: $answer\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no rubric for answer_correctness, judge_answer_similarity, answer_relevance"):
        Rubrics.load(path)


def test_unknown_metric_is_refused_and_the_class_is_a_judge(bedrock: Any) -> None:
    with pytest.raises(ValueError, match="unknown judge metrics answer_similarity"):
        BedrockJudge(bedrock, metrics=["answer_similarity"])
    assert isinstance(BedrockJudge(bedrock), Judge)
