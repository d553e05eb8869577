"""The extractive baseline generator: no language model, it returns the context sentences closest to the question.

It gives every run a real, reproducible answer to measure when no LLM endpoint is configured. It has no
token log-probabilities (`logprobs=None`). It reads the question and contexts from the answer prompt's
`AnswerRequest` as data, never from the rendered text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from processing.agent.prompts import AnswerRequest
from processing.interfaces import Embedder, Generation, Message

MODEL_ID = "extractive-baseline"
DESCRIPTION = "extractive baseline (no LLM): the context sentences most similar to the question, by embedding cosine"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


class ExtractiveGenerator:
    model_id = MODEL_ID
    description = DESCRIPTION

    def __init__(self, embedder: Embedder, *, sentences: int = 2):
        self.embedder = embedder
        self.sentences = sentences

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        request = next((m for m in reversed(messages) if isinstance(m, AnswerRequest)), None)
        if request is None:
            raise ValueError("the extractive baseline answers the agent's answer prompt only (prompts.answer_messages)")
        question = request.question
        candidates = list(dict.fromkeys(s for c in request.contexts for s in split_sentences(c)))
        if not candidates:
            return Generation(text="", model_id=self.model_id, stop_reason="no_context")
        vectors = self.embedder.embed([question, *candidates])
        similarity = vectors[1:] @ vectors[0]
        chosen = sorted(np.argsort(-similarity, kind="stable")[: self.sentences])
        words = " ".join(candidates[i] for i in chosen).split()
        text = " ".join(words[:max_tokens])
        return Generation(
            text=text,
            model_id=self.model_id,
            completion_tokens=min(len(words), max_tokens),
            stop_reason="length" if len(words) > max_tokens else "stop",
        )
