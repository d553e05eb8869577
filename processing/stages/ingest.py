"""DataIngestion: embed this instance's chunks and write them into the run's index version.

The chunks are those of the shard files present: all of them locally, an instance's share in a sharded
SageMaker ingest step. With `ingest_shards` > 1 they are split into that many contiguous parts, each embedded
and written by its own worker process (spawned, since torch and faiss are not fork-safe), the cores shared
between them. Nothing is searchable until the publish stage has checked the version's count and published it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from processing.config import RunConfig
from processing.context import StageContext
from processing.interfaces import Chunk, Embedder, VectorStore
from processing.stages.chunk import read_chunks
from processing.stages.files import CHUNK_SHARDS_DIR

logger = logging.getLogger(__name__)


class IngestCountError(RuntimeError):
    """The store reports a different number of chunks written than it was given."""


def ingest(chunks: list[Chunk], embedder: Embedder, store: VectorStore) -> dict[str, float]:
    """Embed the chunks and write them into the store's version; returns counts and timings. The chunk stage
    wrote each chunk id once, so every chunk given must be written: a store that reports fewer fails the stage."""
    started = time.perf_counter()
    vectors = embedder.embed([c.text for c in chunks])
    embedded = time.perf_counter()
    written = store.write(chunks, vectors)
    finished = time.perf_counter()
    if written != len(chunks):
        raise IngestCountError(f"vector store wrote {written} chunks, expected {len(chunks)}")
    return {
        "ingested_count": written,
        "embedding_seconds": embedded - started,
        "write_seconds": finished - embedded,
        "ingest_chunks_per_second": len(chunks) / max(finished - started, 1e-9),
    }


def _share_cores(threads: int) -> None:
    """Worker initializer: OpenMP (torch, faiss) reads this when it loads, so workers do not oversubscribe."""
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _ingest_part(config: RunConfig, directory: Path, version: str, chunks: list[Chunk]) -> dict[str, float]:
    from processing.backends import factory

    return ingest(chunks, factory.build_embedder(config), factory.build_vector_store(config, directory, version))


def ingest_in_workers(
    config: RunConfig, chunks: list[Chunk], directory: Path, version: str, workers: int
) -> dict[str, float]:
    """Split the chunks into `workers` contiguous parts, one worker process each; sums their counts."""
    size = -(-len(chunks) // workers)
    parts = [chunks[start : start + size] for start in range(0, len(chunks), size)] if chunks else []
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    started = time.perf_counter()
    with ProcessPoolExecutor(
        len(parts) or 1, mp_context=get_context("spawn"), initializer=_share_cores, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(_ingest_part, config, directory, version, part) for part in parts]
        results = [future.result() for future in futures]
    elapsed = time.perf_counter() - started
    return {
        "ingested_count": sum(r["ingested_count"] for r in results),
        "embedding_seconds": max((r["embedding_seconds"] for r in results), default=0.0),
        "write_seconds": max((r["write_seconds"] for r in results), default=0.0),
        "ingest_chunks_per_second": len(chunks) / max(elapsed, 1e-9),
    }


MANIFEST_FILE = "ingest_manifest.json"


def manifest(chunks: list[Chunk], measured: Mapping[str, float], config: RunConfig, version: str) -> dict:
    """The DataIngestion artifact: what was written where, and a digest of the chunk ids it holds."""
    ids = sorted({chunk.chunk_id for chunk in chunks})
    return {
        "vector_store": config.vector_store,
        "index_name": config.index_name,
        "index_version": version,
        "embedding_model": config.embedding_model,
        "ingested_count": measured["ingested_count"],
        "chunk_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
    }


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    # A sharded SageMaker step may give an instance no shard file (its input folder absent or empty): it has
    # nothing to write, and publish still reconciles the version against every unique chunk.
    chunks = read_chunks(inputs["chunks"]) if (inputs["chunks"] / CHUNK_SHARDS_DIR).is_dir() else []
    if not chunks:
        logger.warning("no chunks reached this instance (%s): nothing to ingest here", inputs["chunks"])
        mlflow.log_params({"index_version": context.index_version, "ingest_host": os.uname().nodename})
        mlflow.log_metrics({"ingested_count": 0})
        return
    embedder = context.backends.embedder()
    mlflow.log_params(
        {
            "embeddings": config.embeddings,
            "embedding_model": embedder.model_id,
            "embedding_dimension": embedder.dimension,
            "vector_store": config.vector_store,
            "index_name": config.index_name,
            "index_version": context.index_version,
            "ingest_shards": config.ingest_shards,
            "ingest_host": os.uname().nodename,
            "hnsw_m": config.hnsw_m,
            "hnsw_ef_construction": config.hnsw_ef_construction,
            "hnsw_ef_search": config.hnsw_ef_search,
            "space_type": config.space_type,
        }
    )
    if config.ingest_shards > 1:
        metrics = ingest_in_workers(config, chunks, output_dir, context.index_version, config.ingest_shards)
    else:
        metrics = ingest(chunks, embedder, context.backends.vector_store(output_dir, context.index_version))
    mlflow.log_metrics(metrics)
    mlflow.log_dict(manifest(chunks, metrics, config, context.index_version), MANIFEST_FILE)
