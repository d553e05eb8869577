from processing.interfaces import JudgeInput
from processing.metrics.registry import JUDGE_METRICS
from processing.stages.evaluate import judge_scores

ROWS = [JudgeInput("q1", "a1", ("c",), "g1"), JudgeInput("q2", "a2", ("c",), "g2")]


class PartialJudge:
    """A judge that scored faithfulness for one row only and nothing else."""

    model_id = "partial-judge"

    def score(self, rows):
        return {"faithfulness": [0.5, None], "answer_relevance": [None, None]}


def test_without_a_judge_every_judge_metric_is_skipped_not_zero() -> None:
    scores, skipped, correctness = judge_scores(None, ROWS)
    assert scores == {}
    assert correctness == [None, None]
    assert skipped == dict.fromkeys(JUDGE_METRICS, "no judge configured")


def test_missing_judge_scores_are_skipped_and_partial_ones_averaged() -> None:
    scores, skipped, correctness = judge_scores(PartialJudge(), ROWS)
    assert correctness == [None, None]  # answer_correctness not returned
    assert scores == {"faithfulness": 0.5}
    assert set(skipped) == set(JUDGE_METRICS) - {"faithfulness"}
    assert skipped["answer_relevance"] == "judge partial-judge returned no usable score"
