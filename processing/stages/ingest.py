"""DataIngestion: embed the run's unique chunks and write them to the vector store in one upsert.

One call with the whole corpus is what a versioned store needs (OpenSearch publishes each call as a complete
new index behind the alias) and is equally right for a store that merges (faiss); see `VectorStore`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path

from processing.config import RunConfig
from processing.context import StageContext
from processing.interfaces import Chunk, Embedder, VectorStore
from processing.stages.chunk import read_chunks


class IngestCountError(RuntimeError):
    """The store reports a different number of chunks written than the run produced."""


def ingest(chunks: list[Chunk], embedder: Embedder, store: VectorStore) -> dict[str, float]:
    """Embed the unique chunks and upsert them in one call; returns counts and timings."""
    chunks = list({chunk.chunk_id: chunk for chunk in chunks}.values())
    started = time.perf_counter()
    vectors = embedder.embed([c.text for c in chunks])
    embedded = time.perf_counter()
    written = store.upsert(chunks, vectors)
    finished = time.perf_counter()
    if written != len(chunks):
        raise IngestCountError(f"vector store wrote {written} chunks, expected {len(chunks)} unique chunks")
    return {
        "ingested_count": written,
        "index_document_count": store.count(),
        "embedding_seconds": embedded - started,
        "upsert_seconds": finished - embedded,
        "ingest_chunks_per_second": len(chunks) / max(finished - started, 1e-9),
    }


MANIFEST_FILE = "ingest_manifest.json"


def manifest(chunks: list[Chunk], measured: Mapping[str, float], config: RunConfig) -> dict:
    """The DataIngestion artifact: what was written where, and a digest of the chunk ids it holds."""
    ids = sorted({chunk.chunk_id for chunk in chunks})
    return {
        "vector_store": config.vector_store,
        "index_name": config.index_name,
        "embedding_model": config.embedding_model,
        "ingested_count": measured["ingested_count"],
        "index_document_count": measured["index_document_count"],
        "chunk_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
    }


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    embedder = context.backends.embedder()
    store = context.backends.vector_store(output_dir)
    mlflow.log_params(
        {
            "embeddings": config.embeddings,
            "embedding_model": embedder.model_id,
            "embedding_dimension": embedder.dimension,
            "vector_store": config.vector_store,
            "index_name": config.index_name,
            "hnsw_m": config.hnsw_m,
            "hnsw_ef_construction": config.hnsw_ef_construction,
            "hnsw_ef_search": config.hnsw_ef_search,
            "space_type": config.space_type,
        }
    )
    chunks = read_chunks(inputs["chunks"])
    measured = ingest(chunks, embedder, store)
    mlflow.log_metrics(measured)
    mlflow.log_dict(manifest(chunks, measured, config), MANIFEST_FILE)
