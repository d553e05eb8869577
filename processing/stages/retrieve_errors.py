"""How the retrieval stage tells a failed question from a failed vector store.

A question can fail on its own (a generator's non-transient error, such as TGI's 422 for a prompt too long for
the model's context): it is recorded with its error and the others go on. A search that fails means the store
is down for every question, so the stage stops at once with one clear error instead of failing each question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from processing.backends.errors import CloudBackendError
from processing.interfaces import Hit, HybridSearch, VectorStore

T = TypeVar("T")
MAX_ERROR_CHARS = 2000


class VectorStoreUnavailableError(CloudBackendError):
    """A vector store search failed during retrieval; the message names the store and the cause."""


class RetrievalFailedError(RuntimeError):
    """More questions failed than `max_failed_question_share` allows; the answers of the others are kept."""


class _GuardedStore:
    """Searches of `store`, whose failures raise VectorStoreUnavailableError naming `label`."""

    def __init__(self, store: VectorStore, label: str) -> None:
        self._store, self._label = store, label
        self.version = store.version

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        return self._call(self._store.search, vector, k)

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        try:
            return method(*args)
        except Exception as error:
            raise VectorStoreUnavailableError(
                f"{self._label}: search failed during retrieval: {type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
            ) from error


class _GuardedHybridStore(_GuardedStore):
    def hybrid_search(self, text: str, vector: np.ndarray, k: int) -> list[Hit]:
        return self._call(self._store.hybrid_search, text, vector, k)  # type: ignore[attr-defined]


def guarded(store: VectorStore, label: str) -> Any:
    """`store` for the agent: the same searches (hybrid too, when it has one), failures as a store outage."""
    return _GuardedHybridStore(store, label) if isinstance(store, HybridSearch) else _GuardedStore(store, label)


def failure_row(question_id: str, question: str, error: BaseException) -> dict[str, Any]:
    """One line of the failed-questions file: which question, and the error that ended it."""
    return {
        "question_id": question_id,
        "question": question,
        "error_type": type(error).__name__,
        "error": str(error)[:MAX_ERROR_CHARS],
    }


def check_failures(failures: Sequence[dict[str, Any]], questions: int, max_share: float) -> None:
    """Raise RetrievalFailedError when the failed share exceeds `max_share` (or nothing was answered)."""
    if not failures:
        return
    share = len(failures) / questions
    if share > max_share or len(failures) == questions:
        first = failures[0]
        raise RetrievalFailedError(
            f"{len(failures)} of {questions} questions failed ({share:.1%} > max_failed_question_share "
            f"{max_share:.1%}); the others' answers are kept; first: {first['question_id']}: "
            f"{first['error_type']}: {first['error']}"[:MAX_ERROR_CHARS]
        )
