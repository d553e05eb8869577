"""Stores on the real node and the data the engine tests write: importable by spawned writer processes."""

from __future__ import annotations

from typing import Any

import numpy as np

from processing.backends.opensearch_client import opensearch_client
from processing.backends.opensearch_store import OpenSearchVectorStore
from processing.interfaces import Chunk

DIMENSION = 16


def store(url: str, index: str, version: str = "r1", **overrides: Any) -> OpenSearchVectorStore:
    """A lucene store on the node at `url`, reached as `processing run` reaches a loopback node."""
    options: dict[str, Any] = {
        "dimension": DIMENSION,
        "engine": "lucene",
        "space_type": "cosine",
        "m": 16,
        "ef_construction": 128,
        "ef_search": 100,
        "replicas": 1,
        "bulk_initial_backoff": 0.1,
        "publish_timeout_s": 60,
    }
    return OpenSearchVectorStore(opensearch_client(url), index=index, version=version, **(options | overrides))


def corpus(count: int, seed: int = 7) -> tuple[list[Chunk], np.ndarray]:
    """`count` chunks with unit vectors drawn at random (fixed seed)."""
    vectors = np.random.default_rng(seed).normal(size=(count, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(f"c{n:04d}", f"chunk number {n} about topic {n % 7}", f"doc-{n // 3}") for n in range(count)]
    return chunks, vectors


def write_share(url: str, index: str, shards: int, start: int, stop: int, count: int) -> int:
    """One ingest writer process: its contiguous share of the corpus into the run's version."""
    chunks, vectors = corpus(count)
    return store(url, index, shards=shards, bulk_chunk_size=25).write(chunks[start:stop], vectors[start:stop])
