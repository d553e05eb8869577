"""Vector store on an Amazon OpenSearch Service k-NN index, with the same HNSW parameters as the local index.

A run's chunks go into one physical index, the version `<index>-<version>`; every ingest writer of the run
(processes, processing instances) bulk-writes its share into it, loading as OpenSearch's operators advise:
`refresh_interval: -1` and no replicas while loading, bulk requests bounded in bytes (`opensearch_bulk`).
`publish` then refreshes the version, checks it holds exactly the chunks the run produced (else fails naming
both numbers and deletes it), restores the refresh interval and the replicas and waits for green
(`opensearch_index`), and only then moves the alias `<index>` to it in one atomic call (`opensearch_alias`).
Once the swap has been sent the version is never deleted by this publish, whatever the answer. Readers of the
run search its version (`opensearch_search`); the alias names the deployment's latest. Older versions expire at
publish (`opensearch_retention`).

The k-NN engine is a setting: faiss (the deployed default) or lucene; Amazon OpenSearch Service offers both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from opensearchpy import NotFoundError, OpenSearch

from processing.backends.errors import CloudBackendError
from processing.backends.opensearch_alias import swap_alias
from processing.backends.opensearch_bulk import bulk_index
from processing.backends.opensearch_index import KnnMethod, create_version, discard, index_body, restore_settings
from processing.backends.opensearch_retention import delete_expired
from processing.backends.opensearch_search import hits, hybrid_body, hybrid_pipeline, knn_body, similarity
from processing.interfaces import Chunk, CountMismatchError, Hit

_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,180}$")
_VERSION_NAME = re.compile(r"^[a-z0-9]{1,64}$")
# Well under the 10 MiB HTTP payload that OpenSearch Service accepts on its smaller instance types.
BULK_MAX_BYTES = 5 * 1024 * 1024


class OpenSearchVectorStore:
    """`interfaces.VectorStore` on versioned k-NN indices (HNSW, faiss or lucene) behind an alias."""

    def __init__(
        self,
        client: OpenSearch,
        *,
        index: str,
        version: str,
        dimension: int,
        engine: str = "faiss",
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
        if bm25_weight is not None and not 0.0 < bm25_weight < 1.0:
            raise ValueError("bm25_weight must be between 0 and 1 (exclusive)")
        positive = (dimension, m, ef_construction, ef_search, shards, bulk_chunk_size, bulk_max_bytes, retention_hours)
        if min(positive) <= 0 or replicas < 0:
            raise ValueError("dimension, HNSW parameters, shards, bulk sizes and retention_hours must be positive")
        self._client = client
        self.index = index
        self.version = version
        self.method = KnnMethod(engine, space_type, dimension, m, ef_construction, ef_search)
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

    def write(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Bulk-write into the version (created on first write by whichever writer comes first); returns the
        items OpenSearch acknowledged. Chunk ids are unique from the chunk stage on: nothing is dropped here."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.shape != (len(chunks), self.method.dimension):
            raise ValueError(f"vectors must have shape ({len(chunks)}, {self.method.dimension}), got {matrix.shape}")
        if not chunks:
            return 0
        create_version(self._client, self.version_index, index_body(self.method, self.shards))
        return bulk_index(self._client, self.version_index, chunks, matrix, self._bulk_options)

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
            restore_settings(
                self._client,
                name,
                refresh_interval=self.refresh_interval,
                replicas=self.replicas,
                timeout_s=self.publish_timeout_s,
            )
            if self.bm25_weight is not None:
                body = hybrid_pipeline(self.index, self.bm25_weight)
                self._client.search_pipeline.put(id=self.hybrid_pipeline, body=body)
        except Exception:
            discard(self._client, name)
            raise
        swap_alias(self._client, self.index, name)  # from here on, an error never deletes the version
        delete_expired(self._client, self.index, keep=name, retention_hours=self.retention_hours, now_s=self._clock())
        return stored

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        response = self._client.search(index=self.version_index, body=knn_body(self.method, vector, k))
        return [replace(hit, score=similarity(self.method.space_type, hit.score)) for hit in hits(response)]

    def hybrid_search(self, text: str, vector: np.ndarray, k: int) -> list[Hit]:
        """BM25 on the chunk text and k-NN on its vector, min-max normalised and mixed by `bm25_weight`."""
        if self.bm25_weight is None:
            raise CloudBackendError(f"hybrid search on '{self.index}' needs bm25_weight to be configured")
        body = hybrid_body(self.method, text, vector, k)
        return hits(self._client.search(index=self.version_index, body=body, search_pipeline=self.hybrid_pipeline))

    def count(self) -> int:
        try:
            return int(self._client.count(index=self.version_index)["count"])
        except NotFoundError:
            return 0
