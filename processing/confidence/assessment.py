"""One answer's confidence as the agent and the evaluation use it, or the explicit reason there is none.

The answer is scored apart from any `<think>` reasoning (long, mostly confident reasoning would drown the
short answer's signal); the reasoning gets its own sequence confidence. Low-confidence spans are looked for in
the answer only, since they are what a reader would take as fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class AnswerAssessment:
    """`unavailable_reason` is None when the answer was scored; every measure is None otherwise."""

    unavailable_reason: str | None
    answer: Mapping[str, float | None] = field(default_factory=lambda: dict.fromkeys(SEQUENCE_MEASURES))
    reasoning_confidence: float | None = None
    prompt_clarity: float | None = None
    flags: tuple[LowConfidenceSpan, ...] = ()
    answer_token_count: int | None = None

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    @property
    def confidence(self) -> float | None:
        """The answer's sequence confidence (geometric-mean token probability): what the agent thresholds."""
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
            "flagged_span_count": len(self.flags) if self.available else None,
            "flagged_spans": SPAN_SEPARATOR.join(span.text for span in self.flags),
        }


def assess(generation: Generation, *, token_prob_threshold: float, clarity_tokens: int) -> AnswerAssessment:
    """Score one generation; unavailable (never zeros) without log-probabilities or without decodable tokens."""
    if generation.logprobs is None:
        return AnswerAssessment(unavailable_reason=NO_LOGPROBS)
    try:
        split = split_reasoning_tokens(generation.logprobs)
    except UndecodedTokens as error:
        return AnswerAssessment(unavailable_reason=str(error))
    return AnswerAssessment(
        unavailable_reason=None,
        answer=score_sequence(split.answer),
        reasoning_confidence=sequence_confidence(split.reasoning) if split.reasoning is not None else None,
        prompt_clarity=prompt_clarity(generation.logprobs, clarity_tokens),
        flags=tuple(low_confidence_spans(split.answer, token_prob_threshold)),
        answer_token_count=len(split.answer.tokens),
    )
