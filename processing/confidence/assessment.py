"""One answer's confidence as the agent and the evaluation use it, or the explicit reason there is none.

The answer is scored apart from any `<think>` reasoning (long, mostly confident reasoning would drown the
short answer's signal); the reasoning gets its own sequence confidence. Low-confidence spans are looked for in
the answer only, since they are what a reader would take as fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processing.confidence.decision_label import decision_label_confidence
from processing.confidence.measures import (
    SEQUENCE_MEASURES,
    LowConfidenceSpan,
    low_confidence_spans,
    prompt_clarity,
    score_sequence,
    sequence_confidence,
)
from processing.confidence.reasoning import UndecodedTokens, split_reasoning_tokens
from processing.interfaces import Generation

NO_LOGPROBS = "generator returns no log-probabilities"
SPAN_SEPARATOR = " | "
# What the agent can threshold: the answer's geometric-mean token probability, or the probability on its label.
CONFIDENCE_MEASURES = ("sequence_confidence", "decision_label")


@dataclass(frozen=True)
class AnswerAssessment:
    """`unavailable_reason` is None when the answer was scored; every measure is None otherwise."""

    unavailable_reason: str | None
    answer: Mapping[str, float | None] = field(default_factory=lambda: dict.fromkeys(SEQUENCE_MEASURES))
    reasoning_confidence: float | None = None
    prompt_clarity: float | None = None
    flags: tuple[LowConfidenceSpan, ...] = ()
    answer_token_count: int | None = None
    decision_label: str | None = None
    decision_label_confidence: float | None = None  # None: no leading label, or no top-k alternatives
    measure: str = "sequence_confidence"

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    @property
    def confidence(self) -> float | None:
        """What the agent thresholds: the measure the run config names (`confidence_measure`)."""
        if self.measure == "decision_label":
            return self.decision_label_confidence
        return self.answer["sequence_confidence"]

    def record(self) -> dict[str, Any]:
        """Flat, JSON-ready columns for the answers file and the per-question table."""
        return {
            "confidence_available": self.available,
            "confidence_unavailable_reason": self.unavailable_reason,
            **{f"answer_{name}": value for name, value in self.answer.items()},
            "reasoning_confidence": self.reasoning_confidence,
            "prompt_clarity": self.prompt_clarity,
            "answer_token_count": self.answer_token_count,
            "decision_label": self.decision_label,
            "decision_label_confidence": self.decision_label_confidence,
            "flagged_span_count": len(self.flags) if self.available else None,
            "flagged_spans": SPAN_SEPARATOR.join(span.text for span in self.flags),
        }


def assess(
    generation: Generation, *, token_prob_threshold: float, clarity_tokens: int, measure: str = "sequence_confidence"
) -> AnswerAssessment:
    """Score one generation; unavailable (never zeros) without log-probabilities or without decodable tokens."""
    if measure not in CONFIDENCE_MEASURES:
        raise ValueError(f"unknown confidence measure {measure!r}; measures: {', '.join(CONFIDENCE_MEASURES)}")
    if generation.logprobs is None:
        return AnswerAssessment(unavailable_reason=NO_LOGPROBS, measure=measure)
    try:
        split = split_reasoning_tokens(generation.logprobs)
    except UndecodedTokens as error:
        return AnswerAssessment(unavailable_reason=str(error), measure=measure)
    label = decision_label_confidence(split.answer)
    return AnswerAssessment(
        unavailable_reason=None,
        answer=score_sequence(split.answer),
        reasoning_confidence=sequence_confidence(split.reasoning) if split.reasoning is not None else None,
        prompt_clarity=prompt_clarity(generation.logprobs, clarity_tokens),
        flags=tuple(low_confidence_spans(split.answer, token_prob_threshold)),
        answer_token_count=len(split.answer.tokens),
        decision_label=None if label is None else label.label,
        decision_label_confidence=None if label is None else label.probability,
        measure=measure,
    )
