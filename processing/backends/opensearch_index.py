"""The life of one physical index version: its k-NN mapping per engine, its creation for bulk loading, and the
settings restored before it is published (refresh interval, replicas, then a wait for green).

Where each engine reads `ef_search` (the k-NN "Methods and engines" documentation, checked on a 2.19.1 node):
- faiss: the mapping's method parameters (`parameters.ef_search`, default 100, not updatable);
- lucene: only the query (`method_parameters.ef_search`, see `opensearch_search`): a lucene mapping with
  `ef_search` is refused ("Unknown parameter 'ef_search' found"), and without it Lucene searches with ef = k.
The index setting `index.knn.algo_param.ef_search` is read by NMSLIB only (index-settings documentation, k-NN
issue #514): a lucene or faiss index accepts it and ignores it, so it is not sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch, RequestError

from processing.backends.errors import CloudBackendError

logger = logging.getLogger(__name__)

TEXT_FIELD = "text"
VECTOR_FIELD = "embedding"
ENGINES = ("faiss", "lucene")
# Our space names (shared with the local HNSW index) -> OpenSearch k-NN space types.
SPACE_TYPES = {"cosine": "cosinesimil", "innerproduct": "innerproduct", "l2": "l2"}


class IngestError(CloudBackendError):
    """An ingest did not publish; `item_errors` holds the per-document failures OpenSearch reported."""

    def __init__(self, message: str, item_errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.item_errors = list(item_errors or [])


@dataclass(frozen=True)
class KnnMethod:
    """The HNSW graph of the vector field: engine, space (our name) and its parameters."""

    engine: str
    space_type: str
    dimension: int
    m: int
    ef_construction: int
    ef_search: int

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got '{self.engine}'")
        if self.space_type not in SPACE_TYPES:
            raise ValueError(f"space_type must be one of {', '.join(SPACE_TYPES)}, got '{self.space_type}'")

    def mapping(self) -> dict[str, Any]:
        parameters = {"m": self.m, "ef_construction": self.ef_construction}
        if self.engine == "faiss":
            parameters["ef_search"] = self.ef_search
        return {
            "type": "knn_vector",
            "dimension": self.dimension,
            "method": {
                "name": "hnsw",
                "engine": self.engine,
                "space_type": SPACE_TYPES[self.space_type],
                "parameters": parameters,
            },
        }


def index_body(method: KnnMethod, shards: int) -> dict[str, Any]:
    """Settings as while loading (no refresh, no replicas) and the explicit mapping of one version."""
    return {
        "settings": {
            "index": {"knn": True, "number_of_shards": shards, "number_of_replicas": 0, "refresh_interval": "-1"}
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "chunk_id": {"type": "keyword"},
                "source_id": {"type": "keyword"},
                TEXT_FIELD: {"type": "text"},
                "metadata": {"type": "object", "enabled": False},
                VECTOR_FIELD: method.mapping(),
            },
        },
    }


def create_version(client: OpenSearch, name: str, body: dict[str, Any]) -> None:
    """Create the version; another writer of the run having created it first is fine."""
    try:
        client.indices.create(index=name, body=body)
    except RequestError as error:
        if error.error != "resource_already_exists_exception":
            raise


def restore_settings(client: OpenSearch, name: str, *, refresh_interval: str, replicas: int, timeout_s: int) -> None:
    """Searchable settings back (refresh, replicas capped by the data nodes), then green before any alias moves."""
    replicas = capped_replicas(client, replicas, name)
    settings = {"index": {"refresh_interval": refresh_interval, "number_of_replicas": replicas}}
    client.indices.put_settings(index=name, body=settings)
    wait_for_green(client, name, timeout_s)


def capped_replicas(client: OpenSearch, requested: int, name: str) -> int:
    """Requested replicas capped at data nodes - 1: a replica never shares a node with its primary."""
    data_nodes = int(client.cluster.health()["number_of_data_nodes"])
    replicas = max(0, min(requested, data_nodes - 1))
    if replicas < requested:
        logger.warning("%s: %d replicas requested, %d data nodes: using %d", name, requested, data_nodes, replicas)
    return replicas


def wait_for_green(client: OpenSearch, name: str, timeout_s: int) -> None:
    """Green (every replica assigned) before the alias moves, so readers never land on a lone primary."""
    wait = f"{timeout_s}s"
    # OpenSearch answers 408 with the health body when the wait times out. The client reads a bare `timeout`
    # as its own socket timeout; given `request_timeout`, it sends `timeout` to the API as the wait.
    health = client.cluster.health(
        index=name, wait_for_status="green", timeout=wait, request_timeout=timeout_s + 30, ignore=408
    )
    if health.get("timed_out") or health.get("status") != "green":
        raise IngestError(
            f"index {name} is {health.get('status')} after {wait}: its replicas were not"
            f" assigned ({health.get('unassigned_shards')} unassigned shards)"
        )


def discard(client: OpenSearch, name: str) -> None:
    """Delete a version that will not be published; a failure is logged for a person to act on."""
    try:
        client.indices.delete(index=name)
    except Exception:
        logger.exception("could not delete the unpublished index %s; delete it by hand", name)
