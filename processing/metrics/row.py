"""What the metrics see of one evaluated question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EvalRow:
    question_id: str
    retrieved: tuple[str, ...]  # chunk ids, best first
    relevant: frozenset[str]  # chunk ids cut from the question's own gold contexts
    k: int
    answer: str
    reference: str  # the LONG_ANSWER
    predicted_decision: str | None
    gold_decision: str
    answer_vector: np.ndarray  # normalised embeddings of answer and reference
    reference_vector: np.ndarray
