"""Vector store on an Amazon OpenSearch Service k-NN index, with the same HNSW parameters as the local index.

A run's chunks go into one physical index, the version `<index>-<version>`; every ingest writer of the run
(processes, processing instances) bulk-writes its share into it, loading as OpenSearch's operators advise:
`refresh_interval: -1` and no replicas while loading, bulk requests bounded in bytes. `publish` then refreshes
the version, checks it holds exactly the chunks the run produced (else fails naming both numbers and deletes it),
restores the refresh interval and the replicas, waits for them, and only then moves the alias `<index>` to it in
one atomic `_aliases` call. Readers of the run search its version; the alias names the deployment's latest.

At publish, older versions of this index name are deleted once they are older than `retention_hours`
(their `index.creation_date`): never the version the alias now points to, and never a younger one, which a
concurrent execution may still be reading. Set the retention at least as long as an execution may run.

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
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from opensearchpy import NotFoundError, OpenSearch, RequestError

from processing.backends.errors import CloudBackendError
from processing.backends.opensearch_ops import TEXT_FIELD, VECTOR_FIELD, IngestError, bulk_index, expired_versions
from processing.interfaces import Chunk, CountMismatchError, Hit

logger = logging.getLogger(__name__)

# Our space names (shared with the local HNSW index) -> OpenSearch k-NN space types.
SPACE_TYPES = {"cosine": "cosinesimil", "innerproduct": "innerproduct", "l2": "l2"}
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,180}$")
_VERSION_NAME = re.compile(r"^[a-z0-9]{1,64}$")
# Well under the 10 MiB HTTP payload that OpenSearch Service accepts on its smaller instance types.
BULK_MAX_BYTES = 5 * 1024 * 1024


class OpenSearchVectorStore:
    """`interfaces.VectorStore` on versioned k-NN indices (faiss HNSW) behind an alias."""

    def __init__(
        self,
        client: OpenSearch,
        *,
        index: str,
        version: str,
        dimension: int,
        space_type: str = "cosine",
        m: int = 16,
        ef_construction: int = 128,
        ef_search: int = 100,
        shards: int = 1,
        replicas: int = 1,
        bulk_chunk_size: int = 500,
        bulk_max_bytes: int = BULK_MAX_BYTES,
        bulk_max_retries: int = 5,
        bulk_initial_backoff: float = 2.0,
        bulk_max_backoff: float = 60.0,
        bm25_weight: float | None = None,
        retention_hours: float = 24.0,
        refresh_interval: str = "1s",
        publish_timeout_s: int = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _INDEX_NAME.match(index):
            raise ValueError(f"index '{index}' is not a valid OpenSearch index name (lowercase, digits, - and _)")
        if not _VERSION_NAME.match(version):
            raise ValueError(f"index version '{version}' must be 1-64 lowercase letters or digits")
        if space_type not in SPACE_TYPES:
            raise ValueError(f"space_type must be one of {', '.join(SPACE_TYPES)}, got '{space_type}'")
        if bm25_weight is not None and not 0.0 < bm25_weight < 1.0:
            raise ValueError("bm25_weight must be between 0 and 1 (exclusive)")
        positive = (dimension, m, ef_construction, ef_search, shards, bulk_chunk_size, bulk_max_bytes, retention_hours)
        if min(positive) <= 0 or replicas < 0:
            raise ValueError("dimension, HNSW parameters, shards, bulk sizes and retention_hours must be positive")
        self._client = client
        self.index = index
        self.version = version
        self.dimension = dimension
        self.space_type = space_type
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.shards, self.replicas = shards, replicas
        self._bulk_options = {
            "chunk_size": bulk_chunk_size,
            "max_chunk_bytes": bulk_max_bytes,
            "max_retries": bulk_max_retries,
            "initial_backoff": bulk_initial_backoff,
            "max_backoff": bulk_max_backoff,
        }
        self.bm25_weight = bm25_weight
        self.retention_hours = retention_hours
        self.refresh_interval = refresh_interval
        self.publish_timeout_s = publish_timeout_s
        self._clock = clock

    @property
    def version_index(self) -> str:
        return f"{self.index}-{self.version}"

    @property
    def hybrid_pipeline(self) -> str:
        return f"{self.index}-hybrid"

    def index_body(self, replicas: int) -> dict[str, Any]:
        """Settings (as while loading: no refresh) and explicit mapping of one physical index version."""
        return {
            "settings": {
                "index": {
                    "knn": True,
                    "knn.algo_param.ef_search": self.ef_search,
                    "number_of_shards": self.shards,
                    "number_of_replicas": replicas,
                    "refresh_interval": "-1",
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

    def write(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Bulk-write into the version (created on first write by whichever writer comes first)."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.shape != (len(chunks), self.dimension):
            raise ValueError(f"vectors must have shape ({len(chunks)}, {self.dimension}), got {matrix.shape}")
        unique = {chunk.chunk_id: (chunk, vector) for chunk, vector in zip(chunks, matrix, strict=True)}
        if not unique:
            return 0
        self._create_version()
        bulk_index(self._client, self.version_index, unique, self._bulk_options)
        return len(unique)

    def publish(self, expected: int) -> int:
        """Reconcile the version's count with `expected`, restore its settings, then move the alias to it."""
        name = self.version_index
        try:  # a refresh, not HEAD: the pipeline role may send GET, POST, PUT and DELETE only
            self._client.indices.refresh(index=name)
        except NotFoundError:
            raise CountMismatchError(f"index {name} (never written)", expected=expected, indexed=0) from None
        try:
            stored = int(self._client.count(index=name)["count"])
            if stored != expected:
                raise CountMismatchError(f"index {name}", expected=expected, indexed=stored)
            replicas = self._replicas()
            settings = {"index": {"refresh_interval": self.refresh_interval, "number_of_replicas": replicas}}
            self._client.indices.put_settings(index=name, body=settings)
            self._wait_for_replicas(name)
            if self.bm25_weight is not None:
                self._put_hybrid_pipeline()
            self._swap_alias(name)
        except Exception:
            self._discard(name)
            raise
        self._delete_expired()
        return stored

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        body = {"size": k, "_source": {"excludes": [VECTOR_FIELD]}, "query": self._knn_clause(vector, k)}
        hits = self._hits(self._client.search(index=self.version_index, body=body))
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
        response = self._client.search(index=self.version_index, body=body, search_pipeline=self.hybrid_pipeline)
        return self._hits(response)

    def count(self) -> int:
        try:
            return int(self._client.count(index=self.version_index)["count"])
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

    def _create_version(self) -> None:
        """Create the version without replicas; another writer having created it first is fine."""
        try:
            self._client.indices.create(index=self.version_index, body=self.index_body(replicas=0))
        except RequestError as error:
            if error.error != "resource_already_exists_exception":
                raise

    def _replicas(self) -> int:
        """Requested replicas capped at data nodes - 1: a replica never shares a node with its primary."""
        data_nodes = int(self._client.cluster.health()["number_of_data_nodes"])
        replicas = max(0, min(self.replicas, data_nodes - 1))
        if replicas < self.replicas:
            logger.warning(
                "%s: %d replicas requested, %d data nodes: using %d", self.index, self.replicas, data_nodes, replicas
            )
        return replicas

    def _wait_for_replicas(self, name: str) -> None:
        """Green (every replica assigned) before the alias moves, so readers never land on a lone primary."""
        wait = f"{self.publish_timeout_s}s"
        # OpenSearch answers 408 with the health body when the wait times out. The client reads a bare `timeout`
        # as its own socket timeout; given `request_timeout`, it sends `timeout` to the API as the wait.
        health = self._client.cluster.health(
            index=name,
            wait_for_status="green",
            timeout=wait,
            request_timeout=self.publish_timeout_s + 30,
            ignore=408,
        )
        if health.get("timed_out") or health.get("status") != "green":
            raise IngestError(
                f"index {name} is {health.get('status')} after {wait}: its replicas were not"
                f" assigned ({health.get('unassigned_shards')} unassigned shards)"
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

    def _swap_alias(self, new_index: str) -> None:
        try:
            current = sorted(self._client.indices.get_alias(name=self.index))
        except NotFoundError:
            current = []
        actions = [{"remove": {"index": name, "alias": self.index}} for name in current if name != new_index]
        actions.append({"add": {"index": new_index, "alias": self.index}})
        self._client.indices.update_aliases(body={"actions": actions})

    def _discard(self, name: str) -> None:
        try:
            self._client.indices.delete(index=name)
        except Exception:
            logger.exception("could not delete the unpublished index %s; delete it by hand", name)

    def _delete_expired(self) -> None:
        """Delete this index name's versions older than the retention, except the one the alias points to."""
        try:
            expired = expired_versions(
                self._client,
                self.index,
                keep=self.version_index,
                max_age_s=self.retention_hours * 3600,
                now_s=self._clock(),
            )
            if expired:
                self._client.indices.delete(index=",".join(expired))
                logger.info("%s: deleted versions older than %s h: %s", self.index, self.retention_hours, expired)
        except Exception:
            logger.exception("published %s but could not delete expired versions of %s", self.version_index, self.index)


def similarity(space_type: str, score: float) -> float:
    """An OpenSearch k-NN score as the local index reports it: cosine, inner product, or 1 / (1 + d^2)."""
    if space_type == "cosine":
        return 2.0 * score - 1.0
    if space_type == "innerproduct":
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    return score
