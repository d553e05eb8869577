"""The bulk load of a version: requests bounded in count and bytes, items rejected with 429 retried with
backoff, every other failure reported per item."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers

from processing.backends.opensearch_index import TEXT_FIELD, VECTOR_FIELD, IngestError
from processing.interfaces import Chunk

_MAX_REPORTED_ERRORS = 5


def describe_failure(item: dict[str, Any]) -> str:
    """One line per failed bulk item: id, status and the error type/reason OpenSearch gave."""
    _, info = next(iter(item.items()))
    error = info.get("error")
    reason = f"{error.get('type')}: {error.get('reason')}" if isinstance(error, dict) else str(error)
    return f"id={info.get('_id')} status={info.get('status')} {reason}"


def bulk_index(
    client: OpenSearch, index: str, chunks: Sequence[Chunk], vectors: np.ndarray, options: dict[str, Any]
) -> int:
    """Index the chunks through `helpers.streaming_bulk` (`options`: count, bytes and retries per request);
    returns the items OpenSearch acknowledged, or raises IngestError listing the items that failed."""
    actions = (
        {
            "_op_type": "index",
            "_index": index,
            "_id": chunk.chunk_id,
            "_source": {
                "chunk_id": chunk.chunk_id,
                "source_id": chunk.source_id,
                TEXT_FIELD: chunk.text,
                "metadata": dict(chunk.metadata),
                VECTOR_FIELD: vector.tolist(),
            },
        }
        for chunk, vector in zip(chunks, vectors, strict=True)
    )
    acknowledged, failures = 0, []
    for ok, item in helpers.streaming_bulk(client, actions, raise_on_error=False, raise_on_exception=False, **options):
        if ok:
            acknowledged += 1
        else:
            failures.append(item)
    if failures:
        details = [describe_failure(item) for item in failures[:_MAX_REPORTED_ERRORS]]
        raise IngestError(
            f"{len(failures)} of {len(chunks)} chunks failed to index into {index}: {'; '.join(details)}", failures
        )
    return acknowledged
