"""Metric names -> functions, and the judge metrics that need a judge model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import fmean

from processing.metrics import answer, retrieval
from processing.metrics.row import EvalRow

METRICS: dict[str, Callable[[EvalRow], float]] = {
    "hit_at_k": retrieval.hit_at_k,
    "mrr": retrieval.mrr,
    "ndcg_at_k": retrieval.ndcg_at_k,
    "token_f1": answer.token_f1,
    "answer_similarity": answer.answer_similarity,
    "decision_accuracy": answer.decision_accuracy,
}

DESCRIPTIONS: dict[str, str] = {
    "hit_at_k": "share of questions with a gold-context chunk in the top k",
    "mrr": "mean reciprocal rank of the first gold-context chunk in the top k",
    "ndcg_at_k": "normalised discounted cumulative gain at k, binary relevance",
    "token_f1": "token-overlap F1 of answer vs LONG_ANSWER",
    "answer_similarity": "offline: embedding cosine of answer vs LONG_ANSWER (run embedding model), clipped to [0,1]",
    "decision_accuracy": "share of answers whose yes/no/maybe matches final_decision",
}

# Scored by a judge model (LLM-as-judge); "judge_" marks the one whose name the offline metric already uses.
JUDGE_METRICS: tuple[str, ...] = ("answer_correctness", "judge_answer_similarity", "answer_relevance", "faithfulness")


def score_rows(rows: Sequence[EvalRow]) -> list[dict[str, float]]:
    return [{name: metric(row) for name, metric in METRICS.items()} for row in rows]


def mean_scores(per_row: Sequence[dict[str, float]]) -> dict[str, float]:
    return {name: fmean(scores[name] for scores in per_row) for name in METRICS} if per_row else {}
