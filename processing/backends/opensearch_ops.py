"""Cluster-level helpers of the OpenSearch store: the SigV4-signed client, the bulk load with its failures
reported per item, and which versions have expired."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import boto3
import numpy as np
from opensearchpy import AWSV4SignerAuth, NotFoundError, OpenSearch, RequestsHttpConnection, helpers
from opensearchpy.connection import Connection

from processing.backends.errors import CloudBackendError
from processing.interfaces import Chunk

TEXT_FIELD = "text"
VECTOR_FIELD = "embedding"
_MAX_REPORTED_ERRORS = 5


class IngestError(CloudBackendError):
    """An ingest did not publish; `item_errors` holds the per-document failures OpenSearch reported."""

    def __init__(self, message: str, item_errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.item_errors = list(item_errors)


def opensearch_client(
    endpoint: str,
    *,
    region: str,
    session: boto3.Session,
    connection_class: type[Connection] = RequestsHttpConnection,
    timeout: int = 60,
    max_retries: int = 3,
) -> OpenSearch:
    """A SigV4-signed client for an OpenSearch Service domain; transport errors 5xx are retried by the client."""
    credentials = session.get_credentials()
    if credentials is None:
        raise CloudBackendError(f"OpenSearch domain {endpoint} needs AWS credentials: none found")
    match = re.fullmatch(r"(?:https://)?([^/:]+)(?::(\d+))?/?", endpoint)
    if not match:
        raise CloudBackendError(f"opensearch endpoint '{endpoint}' is not an https://host[:port] URL")
    return OpenSearch(
        hosts=[{"host": match[1], "port": int(match[2] or 443)}],
        http_auth=AWSV4SignerAuth(credentials, region, "es"),
        use_ssl=True,
        verify_certs=True,
        connection_class=connection_class,
        timeout=timeout,
        max_retries=max_retries,
        retry_on_status=(500, 502, 503, 504),
        retry_on_timeout=True,
    )


def expired_versions(client: OpenSearch, index: str, *, keep: str, max_age_s: float, now_s: float) -> list[str]:
    """Versions of `index` (`<index>-<version>`, and the earlier per-execution `<index>-<id>-v<n>`) created more
    than `max_age_s` ago, other than `keep` and any the alias `index` points to."""
    # Versions are `<index>-<version>`; before versions, each execution ingested `<index>-<12-character
    # SageMaker execution id>-v<n>`, which the same expiry sweeps away.
    pattern = re.compile(rf"^{re.escape(index)}-(?:[a-z0-9]{{1,64}}|[a-z0-9]{{12}}-v\d+)$")
    try:
        settings = client.indices.get_settings(index=f"{index}-*", name="index.creation_date")
    except NotFoundError:
        return []
    try:
        aliased = set(client.indices.get_alias(name=index))
    except NotFoundError:
        aliased = set()
    expired = []
    for name, details in sorted(settings.items()):
        created_s = int(details["settings"]["index"]["creation_date"]) / 1000
        if pattern.match(name) and name != keep and name not in aliased and now_s - created_s > max_age_s:
            expired.append(name)
    return expired


def describe_failure(item: dict[str, Any]) -> str:
    """One line per failed bulk item: id, status and the error type/reason OpenSearch gave."""
    _, info = next(iter(item.items()))
    error = info.get("error")
    reason = f"{error.get('type')}: {error.get('reason')}" if isinstance(error, dict) else str(error)
    return f"id={info.get('_id')} status={info.get('status')} {reason}"


def bulk_index(
    client: OpenSearch, index: str, unique: dict[str, tuple[Chunk, np.ndarray]], options: dict[str, Any]
) -> None:
    """Index the chunks through `helpers.streaming_bulk` (requests bounded by `options`' count and bytes; items
    rejected with 429 retried with backoff); raises IngestError listing the items that still failed."""
    actions = (
        {
            "_op_type": "index",
            "_index": index,
            "_id": chunk_id,
            "_source": {
                "chunk_id": chunk_id,
                "source_id": chunk.source_id,
                TEXT_FIELD: chunk.text,
                "metadata": dict(chunk.metadata),
                VECTOR_FIELD: vector.tolist(),
            },
        }
        for chunk_id, (chunk, vector) in unique.items()
    )
    failures = [
        item
        for ok, item in helpers.streaming_bulk(
            client, actions, raise_on_error=False, raise_on_exception=False, **options
        )
        if not ok
    ]
    if failures:
        details = [describe_failure(item) for item in failures[:_MAX_REPORTED_ERRORS]]
        raise IngestError(
            f"{len(failures)} of {len(unique)} chunks failed to index into {index}: {'; '.join(details)}", failures
        )
