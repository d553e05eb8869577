import math

import numpy as np
import pytest

from processing.agent.decision import parse_decision
from processing.metrics.answer import answer_embedding_cosine, decision_accuracy, token_f1
from processing.metrics.registry import decision_distribution, majority_baseline, mean_scores, score_rows
from processing.metrics.retrieval import hit_at_k, mrr, ndcg_at_k
from processing.metrics.row import EvalRow

UNIT = np.array([1.0, 0.0], dtype=np.float32)


def row(retrieved=("a", "b", "c"), relevant=("b",), k=3, answer="", reference="", predicted=None, gold="yes", vec=UNIT):
    return EvalRow("q", tuple(retrieved), frozenset(relevant), k, answer, reference, predicted, gold, vec, UNIT)


def test_retrieval_metrics_by_hand() -> None:
    r = row(retrieved=("x", "b", "y", "c"), relevant=("b", "c"), k=4)
    assert hit_at_k(r) == 1.0
    assert mrr(r) == 0.5
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(r) == pytest.approx(expected)


def test_ndcg_ideal_ranking_is_capped_at_k() -> None:
    """Three relevant chunks but k=2: both top places relevant is the ideal, so nDCG is 1, not 1/(1 + 1/2)."""
    r = row(retrieved=("a", "b"), relevant=("a", "b", "c"), k=2)
    assert ndcg_at_k(r) == pytest.approx(1.0)


def test_majority_baseline_is_always_answering_the_commonest_label() -> None:
    assert majority_baseline(["yes", "no", "yes", "maybe"]) == ("yes", 0.5)


def test_relevant_chunk_beyond_k_does_not_count() -> None:
    r = row(retrieved=("x", "y", "b"), relevant=("b",), k=2)
    assert (hit_at_k(r), mrr(r), ndcg_at_k(r)) == (0.0, 0.0, 0.0)


def test_token_f1_by_hand() -> None:
    # normalised: [cat, sat, on, mat] vs [cat, sat]; common 2 -> precision 1/2, recall 1 -> f1 2/3
    assert token_f1(row(answer="The cat sat on the mat.", reference="A cat sat")) == pytest.approx(2 / 3)
    assert token_f1(row(answer="nothing shared", reference="cat")) == 0.0


def test_answer_embedding_cosine_is_clipped_cosine() -> None:
    diagonal = np.array([math.sqrt(0.5), math.sqrt(0.5)], dtype=np.float32)
    assert answer_embedding_cosine(row(vec=diagonal)) == pytest.approx(math.sqrt(0.5))
    assert answer_embedding_cosine(row(vec=-UNIT)) == 0.0


def test_decisions() -> None:
    assert decision_accuracy(row(predicted="no", gold="no")) == 1.0
    assert decision_accuracy(row(predicted=None, gold="no")) == 0.0
    assert parse_decision("Maybe. It depends.") == "maybe"
    assert parse_decision("The backup job does not prove the copy is usable.") == "no"
    assert parse_decision("Results are unclear across studies.") == "maybe"
    assert parse_decision("Versioning keeps earlier versions.") == "yes"
    assert parse_decision("") is None


def test_means_over_rows() -> None:
    rows = [row(relevant=("a",)), row(relevant=("z",))]
    means = mean_scores(score_rows(rows))
    assert means["hit_at_k"] == 0.5
    assert means["mrr"] == 0.5
    assert all(0.0 <= v <= 1.0 for v in means.values())


def test_the_predicted_labels_are_logged_and_one_label_answers_are_called_the_baseline() -> None:
    gold = ["yes"] * 15 + ["no"] * 15 + ["maybe"] * 3
    predicted = ["yes"] * 32 + [None]
    shares, warnings = decision_distribution(predicted, gold, accuracy=0.485)
    assert shares == pytest.approx(
        {
            "decision_predicted_yes_share": 32 / 33,
            "decision_predicted_no_share": 0.0,
            "decision_predicted_maybe_share": 0.0,
            "decision_predicted_none_share": 1 / 33,
        }
    )
    assert warnings == [
        "the answers say 'yes' to 32 of 33 questions: decision_accuracy 0.485 is close to always answering 'yes' "
        "(0.455), not a measure of the model's decisions"
    ]
    assert decision_distribution(["yes", "no", "maybe", "no"], ["no"] * 4, accuracy=0.5)[1] == []
