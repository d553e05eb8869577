"""Offline answer metrics: no judge model, so they are reproducible anywhere."""

from __future__ import annotations

import re
import string
from collections import Counter

from processing.metrics.row import EvalRow

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def answer_tokens(text: str) -> list[str]:
    """SQuAD-style normalisation: lower case, no punctuation, no articles."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split()


def token_f1(row: EvalRow) -> float:
    """Harmonic mean of token precision and recall of the answer against the long answer."""
    predicted, reference = answer_tokens(row.answer), answer_tokens(row.reference)
    common = sum((Counter(predicted) & Counter(reference)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def answer_embedding_cosine(row: EvalRow) -> float:
    """Cosine similarity of the answer's and the long answer's embeddings, clipped to [0, 1]."""
    return float(min(1.0, max(0.0, float(row.answer_vector @ row.reference_vector))))


def decision_accuracy(row: EvalRow) -> float:
    """1 when the answer's yes/no/maybe matches final_decision."""
    return float(row.predicted_decision == row.gold_decision)
