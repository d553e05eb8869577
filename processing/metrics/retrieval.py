"""Retrieval metrics against the gold contexts (binary relevance: a chunk cut from the question's contexts)."""

from __future__ import annotations

import math

from processing.metrics.row import EvalRow


def hit_at_k(row: EvalRow) -> float:
    """1 when any of the first k retrieved chunks is relevant."""
    return float(any(chunk in row.relevant for chunk in row.retrieved[: row.k]))


def mrr(row: EvalRow) -> float:
    """Reciprocal rank of the first relevant chunk within the first k, 0 when there is none."""
    for rank, chunk in enumerate(row.retrieved[: row.k], start=1):
        if chunk in row.relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(row: EvalRow) -> float:
    """DCG of the first k over the DCG of an ideal ranking (all relevant chunks first)."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, c in enumerate(row.retrieved[: row.k], start=1) if c in row.relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(row.relevant), row.k) + 1))
    return dcg / ideal if ideal else 0.0
