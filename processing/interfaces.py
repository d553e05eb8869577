"""Contracts between the pipeline stages and their backends.

Each role (embeddings, vector store, generator, judge) has a local default and AWS implementations; stages
only see these types, so the same stage code runs on a laptop and inside a SageMaker processing job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """A piece of a source document; `chunk_id` is derived from the content so re-runs deduplicate."""

    chunk_id: str
    text: str
    source_id: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk; a higher score means more similar."""

    chunk_id: str
    text: str
    source_id: str
    score: float


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class TokenLogprobs:
    """Per-token log-probabilities of one completion, whatever service produced them.

    `tokens[i]` is the decoded token text, or `"<id:N>"` when only the id is known (Bedrock Custom Model
    Import without a tokenizer). `alternatives[i]`, when the service returned top-k, holds (token, logprob)
    pairs for position i. `prompt_logprobs` holds one entry per prompt token (the first is None) when given.
    """

    tokens: tuple[str, ...]
    logprobs: tuple[float, ...]
    token_ids: tuple[int | None, ...]
    alternatives: tuple[tuple[tuple[str, float], ...], ...] | None = None
    prompt_logprobs: tuple[float | None, ...] | None = None

    def __post_init__(self) -> None:
        if not (len(self.tokens) == len(self.logprobs) == len(self.token_ids)):
            raise ValueError("tokens, logprobs and token_ids must have the same length")
        if self.alternatives is not None and len(self.alternatives) != len(self.tokens):
            raise ValueError("alternatives must have one entry per token")


@dataclass(frozen=True)
class Generation:
    """A generator's answer. `logprobs is None` means the backend did not provide them (never zeros).

    `truncated_in_reasoning`: the reply hit `max_tokens` inside its `<think>` span, so `text` is empty and
    `reasoning` holds the partial reasoning; the agent treats it as its own outcome, never as an answer.
    """

    text: str
    model_id: str
    reasoning: str | None = None
    logprobs: TokenLogprobs | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    stop_reason: str | None = None
    truncated_in_reasoning: bool = False


@runtime_checkable
class Embedder(Protocol):
    model_id: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), rows L2-normalised."""
        ...


class CountMismatchError(RuntimeError):
    """A version holds a different number of chunks than the run produced, so it was not published."""

    def __init__(self, target: str, *, expected: int, indexed: int) -> None:
        super().__init__(f"{target} holds {indexed} chunks, expected {expected}: not published")
        self.expected, self.indexed = expected, indexed


@runtime_checkable
class VectorStore(Protocol):
    """A chunk index written as versions, opened at one version (`version`, the same for every writer of a run).

    Every ingest writer of a run, in any process or on any instance, calls `write` with its share of the
    chunks; then one `publish` checks that the version holds exactly the chunks the run produced and only then
    makes it the store's current one (OpenSearch: moves the alias; faiss: replaces the manifest). `search` and
    `count` read the store's own version, so concurrent runs never read each other's chunks.
    """

    version: str

    def write(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Insert or replace by `chunk_id` into the version; returns the chunks written (ids are unique per run)."""
        ...

    def publish(self, expected: int) -> int:
        """Make the version current once it holds `expected` chunks (else CountMismatchError); returns the count."""
        ...

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The k nearest chunks of the published version to one query vector, best first."""
        ...

    def count(self) -> int:
        """Chunks in the published version; 0 before it is published."""
        ...


@runtime_checkable
class HybridSearch(Protocol):
    """A vector store that can also rank by the query text (BM25) mixed with vector similarity."""

    def hybrid_search(self, text: str, vector: np.ndarray, k: int) -> list[Hit]: ...


@runtime_checkable
class Generator(Protocol):
    model_id: str

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation: ...


@dataclass(frozen=True)
class JudgeInput:
    question: str
    answer: str
    contexts: tuple[str, ...]
    ground_truth: str


@dataclass(frozen=True)
class JudgeScores:
    """One judge metric over the rows: a 1-5 score per row (None: no usable reply) and the judge's reason."""

    scores: tuple[int | None, ...]
    justifications: tuple[str | None, ...]


@runtime_checkable
class Judge(Protocol):
    model_id: str
    provider: str

    def score(self, rows: Sequence[JudgeInput]) -> dict[str, JudgeScores]:
        """Per-metric scores and justifications, one per row, keyed by the metric's logged name."""
        ...
