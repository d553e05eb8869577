"""Vector store on an Amazon OpenSearch Service k-NN index, with the same HNSW parameters as the local index.

Each `upsert` publishes a complete, verified version: chunks go into a new physical index `<index>-v<N>`,
which must hold exactly the unique chunks after a refresh before the alias `<index>` moves to it in one
atomic `_aliases` call. Readers therefore never see a half-written or short index, and a failed ingest
deletes its own index and leaves the alias where it was. The index behind the alias holds the chunks of the
last successful ingest (one run's corpus), so stages call `upsert` once with every chunk of the run.

OpenSearch reports k-NN scores on its own scale (cosinesimil (1 + cos) / 2, innerproduct 1 + ip or
1 / (1 - ip) below zero, l2 1 / (1 + d^2)); `search` maps them back to the local index's scale (cosine, inner
product, 1 / (1 + d^2)), so `relevance_threshold` means the same with either store. Hybrid scores are the
normalised weighted mean in [0, 1].

Hybrid retrieval (`hybrid_search`) uses OpenSearch's `hybrid` query with a search pipeline whose
normalization-processor min-max normalises the BM25 and k-NN scores before a weighted mean: a plain `bool`
`should` of `match` + `knn` would add unbounded BM25 scores to [0, 1] k-NN scores and let BM25 dominate.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import boto3
import numpy as np
from opensearchpy import AWSV4SignerAuth, NotFoundError, OpenSearch, RequestsHttpConnection, helpers
from opensearchpy.connection import Connection

from processing.backends.errors import CloudBackendError
from processing.interfaces import Chunk, Hit

logger = logging.getLogger(__name__)

# Our space names (shared with the local HNSW index) -> OpenSearch k-NN space types.
SPACE_TYPES = {"cosine": "cosinesimil", "innerproduct": "innerproduct", "l2": "l2"}
VECTOR_FIELD = "embedding"
TEXT_FIELD = "text"
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,200}$")
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


class OpenSearchVectorStore:
    """`interfaces.VectorStore` on an alias over versioned k-NN indices (faiss HNSW)."""

    def __init__(
        self,
        client: OpenSearch,
        *,
        index: str,
        dimension: int,
        space_type: str = "cosine",
        m: int = 16,
        ef_construction: int = 128,
        ef_search: int = 100,
        shards: int = 1,
        replicas: int = 1,
        bulk_chunk_size: int = 500,
        bulk_max_retries: int = 5,
        bulk_initial_backoff: float = 2.0,
        bulk_max_backoff: float = 60.0,
        bm25_weight: float | None = None,
        keep_versions: int = 2,
    ) -> None:
        if not _INDEX_NAME.match(index):
            raise ValueError(f"index '{index}' is not a valid OpenSearch index name (lowercase, digits, - and _)")
        if space_type not in SPACE_TYPES:
            raise ValueError(f"space_type must be one of {', '.join(SPACE_TYPES)}, got '{space_type}'")
        if bm25_weight is not None and not 0.0 < bm25_weight < 1.0:
            raise ValueError("bm25_weight must be between 0 and 1 (exclusive)")
        if min(dimension, m, ef_construction, ef_search, shards, bulk_chunk_size, keep_versions) < 1 or replicas < 0:
            raise ValueError("dimension, HNSW parameters, shards, bulk_chunk_size and keep_versions must be positive")
        self._client = client
        self.index = index
        self.dimension = dimension
        self.space_type = space_type
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.shards, self.replicas = shards, replicas
        self._bulk_options = {
            "chunk_size": bulk_chunk_size,
            "max_retries": bulk_max_retries,
            "initial_backoff": bulk_initial_backoff,
            "max_backoff": bulk_max_backoff,
        }
        self.bm25_weight = bm25_weight
        self.keep_versions = keep_versions

    @property
    def hybrid_pipeline(self) -> str:
        return f"{self.index}-hybrid"

    def index_body(self, replicas: int) -> dict[str, Any]:
        """Settings and explicit mapping of one physical index version."""
        return {
            "settings": {
                "index": {
                    "knn": True,
                    "knn.algo_param.ef_search": self.ef_search,
                    "number_of_shards": self.shards,
                    "number_of_replicas": replicas,
                }
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "chunk_id": {"type": "keyword"},
                    "source_id": {"type": "keyword"},
                    TEXT_FIELD: {"type": "text"},
                    "metadata": {"type": "object", "enabled": False},
                    VECTOR_FIELD: {
                        "type": "knn_vector",
                        "dimension": self.dimension,
                        "method": {
                            "name": "hnsw",
                            "engine": "faiss",
                            "space_type": SPACE_TYPES[self.space_type],
                            "parameters": {"m": self.m, "ef_construction": self.ef_construction},
                        },
                    },
                },
            },
        }

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Publish the chunks as a new verified index version behind the alias; returns the unique chunk count."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.shape != (len(chunks), self.dimension):
            raise ValueError(f"vectors must have shape ({len(chunks)}, {self.dimension}), got {matrix.shape}")
        unique = {chunk.chunk_id: (chunk, vector) for chunk, vector in zip(chunks, matrix, strict=True)}
        if not unique:
            return 0
        versions = self._versions()
        new_index = f"{self.index}-v{max(versions, default=0) + 1}"
        self._client.indices.create(index=new_index, body=self.index_body(self._replicas()))
        try:
            self._bulk(new_index, unique)
            self._client.indices.refresh(index=new_index)
            stored = self._client.count(index=new_index)["count"]
            if stored != len(unique):
                raise IngestError(
                    f"index {new_index} holds {stored} documents after refresh, expected {len(unique)} unique chunks"
                )
            if self.bm25_weight is not None:
                self._put_hybrid_pipeline()
            self._swap_alias([name for name, aliased in versions.values() if aliased], new_index)
        except Exception:
            self._discard(new_index)
            raise
        self._prune(sorted(versions), new_index)
        return len(unique)

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        body = {"size": k, "_source": {"excludes": [VECTOR_FIELD]}, "query": self._knn_clause(vector, k)}
        hits = self._hits(self._client.search(index=self.index, body=body))
        return [replace(hit, score=similarity(self.space_type, hit.score)) for hit in hits]

    def hybrid_search(self, text: str, vector: np.ndarray, k: int) -> list[Hit]:
        """BM25 on the chunk text and k-NN on its vector, min-max normalised and mixed by `bm25_weight`."""
        if self.bm25_weight is None:
            raise CloudBackendError(f"hybrid search on '{self.index}' needs bm25_weight to be configured")
        body = {
            "size": k,
            "_source": {"excludes": [VECTOR_FIELD]},
            "query": {"hybrid": {"queries": [{"match": {TEXT_FIELD: {"query": text}}}, self._knn_clause(vector, k)]}},
        }
        return self._hits(self._client.search(index=self.index, body=body, search_pipeline=self.hybrid_pipeline))

    def count(self) -> int:
        try:
            return int(self._client.count(index=self.index)["count"])
        except NotFoundError:
            return 0

    def _knn_clause(self, vector: np.ndarray, k: int) -> dict[str, Any]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape != (self.dimension,):
            raise ValueError(f"query vector must have {self.dimension} values, got {query.shape[0]}")
        return {"knn": {VECTOR_FIELD: {"vector": query.tolist(), "k": k}}}

    @staticmethod
    def _hits(response: dict[str, Any]) -> list[Hit]:
        return [
            Hit(
                chunk_id=hit["_id"],
                text=hit["_source"][TEXT_FIELD],
                source_id=hit["_source"]["source_id"],
                score=float(hit["_score"]),
            )
            for hit in response["hits"]["hits"]
        ]

    def _versions(self) -> dict[int, tuple[str, bool]]:
        """Existing physical versions: number -> (index name, whether the alias points at it)."""
        try:
            indices = self._client.indices.get_alias(index=f"{self.index}-v*")
        except NotFoundError:
            return {}
        pattern = re.compile(rf"^{re.escape(self.index)}-v(\d+)$")
        return {
            int(match[1]): (name, self.index in details.get("aliases", {}))
            for name, details in indices.items()
            if (match := pattern.match(name))
        }

    def _replicas(self) -> int:
        """Requested replicas capped at data nodes - 1: a replica never shares a node with its primary."""
        data_nodes = int(self._client.cluster.health()["number_of_data_nodes"])
        replicas = max(0, min(self.replicas, data_nodes - 1))
        if replicas < self.replicas:
            logger.warning(
                "%s: %d replicas requested, %d data nodes: using %d", self.index, self.replicas, data_nodes, replicas
            )
        return replicas

    def _bulk(self, index: str, unique: dict[str, tuple[Chunk, np.ndarray]]) -> None:
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
                self._client, actions, raise_on_error=False, raise_on_exception=False, **self._bulk_options
            )
            if not ok
        ]
        if failures:
            details = [_describe_failure(item) for item in failures[:_MAX_REPORTED_ERRORS]]
            raise IngestError(
                f"{len(failures)} of {len(unique)} chunks failed to index into {index}: {'; '.join(details)}",
                failures,
            )

    def _put_hybrid_pipeline(self) -> None:
        weights = [self.bm25_weight, round(1.0 - self.bm25_weight, 6)]
        processor = {
            "normalization": {"technique": "min_max"},
            "combination": {"technique": "arithmetic_mean", "parameters": {"weights": weights}},
        }
        self._client.search_pipeline.put(
            id=self.hybrid_pipeline,
            body={
                "description": f"BM25 + k-NN score normalisation for {self.index}",
                "phase_results_processors": [{"normalization-processor": processor}],
            },
        )

    def _swap_alias(self, current: list[str], new_index: str) -> None:
        actions = [{"remove": {"index": name, "alias": self.index}} for name in current]
        actions.append({"add": {"index": new_index, "alias": self.index}})
        self._client.indices.update_aliases(body={"actions": actions})

    def _discard(self, new_index: str) -> None:
        try:
            self._client.indices.delete(index=new_index)
        except Exception:
            logger.exception("could not delete the unpublished index %s; delete it by hand", new_index)

    def _prune(self, existing: list[int], new_index: str) -> None:
        """Delete versions older than the newest `keep_versions` (the new one included); keep one for rollback."""
        stale = [f"{self.index}-v{number}" for number in existing[: max(0, len(existing) + 1 - self.keep_versions)]]
        if not stale:
            return
        try:
            self._client.indices.delete(index=",".join(stale))
        except Exception:
            logger.exception("published %s but could not delete old versions %s", new_index, stale)


def similarity(space_type: str, score: float) -> float:
    """An OpenSearch k-NN score as the local index reports it: cosine, inner product, or 1 / (1 + d^2)."""
    if space_type == "cosine":
        return 2.0 * score - 1.0
    if space_type == "innerproduct":
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    return score


def _describe_failure(item: dict[str, Any]) -> str:
    """One line per failed bulk item: id, status and the error type/reason OpenSearch gave."""
    _, info = next(iter(item.items()))
    error = info.get("error")
    reason = f"{error.get('type')}: {error.get('reason')}" if isinstance(error, dict) else str(error)
    return f"id={info.get('_id')} status={info.get('status')} {reason}"
