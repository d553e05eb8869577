"""Pipeline benchmark on the PubMedQA labelled set (1,000 questions): ingest throughput against the raw
encoder, HNSW recall@5 against exact search, query latency, and retrieval quality of the default config.

    .venv/bin/python bench/pipeline_bench.py [--dataset PATH] [--set field=value ...]

Writes bench/results/pipeline-<UTC timestamp>.json and prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import fmean

import faiss
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from results_file import write_result  # noqa: E402

from processing.backends.factory import build_vector_store  # noqa: E402
from processing.backends.local_embedder import LocalEmbedder  # noqa: E402
from processing.config import load_config, parse_overrides  # noqa: E402
from processing.datasets import load_dataset  # noqa: E402
from processing.metrics.retrieval import hit_at_k, mrr  # noqa: E402
from processing.metrics.row import EvalRow  # noqa: E402
from processing.stages.chunk import chunk_corpus  # noqa: E402
from processing.stages.ingest import ingest  # noqa: E402

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "pubmedqa" / "ori_pqal.json"
K = 5
VERSION = "bench"


def _retrieval_quality(retrieved: list[list[str]], gold: list[frozenset[str]]) -> dict[str, float]:
    empty = np.zeros(1, dtype=np.float32)
    rows = [EvalRow("", tuple(r), g, K, "", "", None, "", empty, empty) for r, g in zip(retrieved, gold, strict=True)]
    return {f"hit_at_{K}": fmean(hit_at_k(r) for r in rows), "mrr": fmean(mrr(r) for r in rows)}


def _throughput(config, embedder, chunks, rounds: int) -> tuple[list[float], list[float]]:
    """Chunks/s of the bare encoder and of the pipeline's ingest (embed, write, then publish: HNSW build and
    atomic save), measured in alternating rounds so that load from other processes affects both alike."""
    texts = [c.text for c in chunks]
    raw, pipeline = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=config.embedding_batch_size, normalize_embeddings=True)
        raw.append(len(texts) / (time.perf_counter() - started))
        with tempfile.TemporaryDirectory() as directory:
            started = time.perf_counter()
            store = build_vector_store(config, Path(directory), VERSION)
            ingest(chunks, embedder, store)
            store.publish(len(chunks))
            pipeline.append(len(texts) / (time.perf_counter() - started))
    return raw, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--throughput-chunks", type=int, default=800, help="chunks per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/pipeline throughput rounds")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    config = load_config(None, parse_overrides(args.overrides))
    if not args.dataset.is_file():
        sys.exit(f"{args.dataset}: not found; pass --dataset PATH (make bench PUBMEDQA=PATH)")
    dataset = load_dataset(args.dataset)
    sources = [(r.record_id, f"context-{i}", c) for r in dataset.records for i, c in enumerate(r.contexts)]
    unique, by_source, produced = chunk_corpus(config, sources)
    chunks = list(unique.values())
    texts = [c.text for c in chunks]

    embedder = LocalEmbedder(config.embedding_model, batch_size=config.embedding_batch_size, progress=False)
    embedder.embed(texts[:64])  # warm-up: first-call allocations are not throughput
    raw_rates, pipeline_rates = _throughput(config, embedder, chunks[: args.throughput_chunks], args.rounds)

    with tempfile.TemporaryDirectory() as directory:
        store = build_vector_store(config, Path(directory), VERSION)
        ingest(chunks, embedder, store)
        store.publish(len(chunks))
        stored_ids, stored = store.stored_vectors()
        questions = embedder.embed([r.question for r in dataset.records])
        exact = faiss.IndexFlatIP(stored.shape[1])
        exact.add(stored)
        _, exact_ids = exact.search(questions, K)
        latencies, hnsw_retrieved = [], []
        for vector in questions:
            started = time.perf_counter()
            hits = store.search(vector, K)
            latencies.append((time.perf_counter() - started) * 1000)
            hnsw_retrieved.append([h.chunk_id for h in hits])
    exact_retrieved = [[stored_ids[i] for i in row] for row in exact_ids]
    recall = fmean(len(set(h) & set(e)) / K for h, e in zip(hnsw_retrieved, exact_retrieved, strict=True))
    gold = [frozenset(by_source[r.record_id]) for r in dataset.records]

    result = {
        "dataset": args.dataset.name,
        "questions": len(dataset.records),
        "contexts": len(sources),
        "chunks_produced": produced,
        "unique_chunks": len(chunks),
        "run_config": config.model_dump(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": os.getloadavg()[0],
        "throughput_chunks": min(args.throughput_chunks, len(chunks)),
        "throughput_rounds": args.rounds,
        "raw_encoder_chunks_per_s": raw_rates,
        "pipeline_ingest_chunks_per_s": pipeline_rates,
        "ingest_vs_raw_ratio_best": max(pipeline_rates) / max(raw_rates),
        "ingest_vs_raw_ratio_median": float(np.median(pipeline_rates) / np.median(raw_rates)),
        f"hnsw_recall_at_{K}_vs_exact": recall,
        "query_p50_ms": float(np.percentile(latencies, 50)),
        "query_p95_ms": float(np.percentile(latencies, 95)),
        "hnsw": _retrieval_quality(hnsw_retrieved, gold),
        "exact": _retrieval_quality(exact_retrieved, gold),
        "targets": {"ingest_vs_raw_ratio_best": 0.9, f"hit_at_{K}": 0.985},
    }
    write_result("pipeline", result)


if __name__ == "__main__":
    main()
