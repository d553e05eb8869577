"""Offline metric names -> functions, their descriptions, and the majority-label baseline of the decisions.

Judge metrics (MLflow's, `backends/mlflow_judge.py`) have names of their own (`answer_similarity/v1/mean`):
the offline embedding cosine is `answer_embedding_cosine`, so the two can never be read for each other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from statistics import fmean

from processing.datasets import DECISIONS
from processing.metrics import answer, retrieval
from processing.metrics.row import EvalRow

METRICS: dict[str, Callable[[EvalRow], float]] = {
    "hit_at_k": retrieval.hit_at_k,
    "mrr": retrieval.mrr,
    "ndcg_at_k": retrieval.ndcg_at_k,
    "token_f1": answer.token_f1,
    "answer_embedding_cosine": answer.answer_embedding_cosine,
    "decision_accuracy": answer.decision_accuracy,
}

DESCRIPTIONS: dict[str, str] = {
    "hit_at_k": "share of questions with a gold-context chunk in the top k",
    "mrr": "mean reciprocal rank of the first gold-context chunk in the top k",
    "ndcg_at_k": "normalised discounted cumulative gain at k, binary relevance",
    "token_f1": "token-overlap F1 of answer vs LONG_ANSWER",
    "answer_embedding_cosine": "offline: embedding cosine of answer vs LONG_ANSWER (run embedding model), "
    "clipped to [0,1]; not the judge's answer_similarity/v1",
    "decision_accuracy": "share of answers whose yes/no/maybe matches final_decision: the answer's leading label, "
    "else keyword cues (agent/decision.py, decision_source column); compare decision_accuracy_majority_baseline",
}


def majority_baseline(gold_decisions: Sequence[str]) -> tuple[str, float]:
    """(the most common gold label, the accuracy of always answering it): what decision_accuracy must beat."""
    label, count = Counter(gold_decisions).most_common(1)[0]
    return label, count / len(gold_decisions)


ONE_LABEL_SHARE = 0.9  # answers giving one label at least this often make decision_accuracy that label's baseline


def decision_distribution(
    predicted: Sequence[str | None], gold: Sequence[str], accuracy: float
) -> tuple[dict[str, float], list[str]]:
    """Share of answers per predicted label (`none`: no label, or an abstention), to read decision_accuracy
    beside; and a warning when nearly every answer gives one label, so the accuracy is that label's baseline."""
    counts = Counter(label or "none" for label in predicted)
    shares = {f"decision_predicted_{label}_share": counts[label] / len(predicted) for label in (*DECISIONS, "none")}
    label, count = counts.most_common(1)[0]
    if label == "none" or count / len(predicted) < ONE_LABEL_SHARE:
        return shares, []
    always = sum(g == label for g in gold) / len(gold)
    return shares, [
        f"the answers say {label!r} to {count} of {len(predicted)} questions: decision_accuracy {accuracy:.3f} "
        f"is close to always answering {label!r} ({always:.3f}), not a measure of the model's decisions"
    ]


def score_rows(rows: Sequence[EvalRow]) -> list[dict[str, float]]:
    return [{name: metric(row) for name, metric in METRICS.items()} for row in rows]


def mean_scores(per_row: Sequence[dict[str, float]]) -> dict[str, float]:
    return {name: fmean(scores[name] for scores in per_row) for name in METRICS} if per_row else {}
