"""Throughput and scale-out bench on the PubMedQA labelled set.

- Ingest chunks/s with 1 and 2 local shards (worker processes, model load included), and whether both publish
  the same ids and count.
- Questions/s of the agent at generation_concurrency 1, 2, 4 and 8 against (a) `fixed_delay_server.py`, an
  OpenAI-compatible server that answers after a fixed delay as a remote endpoint does, and (b) the embedded
  LLM (llama-server with as many slots as questions in flight); speedup relative to concurrency 1, and whether
  the answers equal the sequential run's.
- The projected time to ingest 1M chunks and to answer 1,000 questions on each environment's sizing in
  cdk.json, from the measured rates, with the formula and its inputs in the JSON.

    .venv/bin/python bench/scale_bench.py [--dataset PATH] [--questions 24] [--delay 1.0] [--llm-questions 8]

Writes bench/results/scale-<UTC timestamp>.json and prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from fixed_delay_server import MODEL, serving  # noqa: E402
from results_file import write_result  # noqa: E402

from processing.agent.graph import build_agent  # noqa: E402
from processing.backends.factory import build_vector_store  # noqa: E402
from processing.backends.local_embedder import LocalEmbedder  # noqa: E402
from processing.config import RunConfig, load_config, parse_overrides  # noqa: E402
from processing.datasets import QaRecord, load_dataset  # noqa: E402
from processing.generators.openai_compatible import OpenAICompatibleGenerator  # noqa: E402
from processing.interfaces import Chunk, Generator, VectorStore  # noqa: E402
from processing.local_llm.generator import LocalLLMGenerator  # noqa: E402
from processing.local_llm.server import ServerSettings  # noqa: E402
from processing.stages.chunk import chunk_corpus  # noqa: E402
from processing.stages.ingest import ingest_in_workers  # noqa: E402
from processing.stages.retrieve import answer_all  # noqa: E402
from stacks.config import committed_context, load_app_config  # noqa: E402

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "pubmedqa" / "ori_pqal.json"
LEVELS = (1, 2, 4, 8)
PROJECTED_CHUNKS = 1_000_000
PROJECTED_QUESTIONS = 1_000
ENDPOINT_LATENCY_S = 10.0  # the upper end of 5-10 s per answer from a 7B model endpoint


def ingest_rates(config: RunConfig, chunks: list[Chunk], root: Path) -> tuple[dict[str, Any], VectorStore]:
    """Chunks/s for 1 and 2 worker processes: steady (embed and write, the slowest worker's) and end to end
    (spawn, model load and publish included), and whether both publish the same contents."""
    rates: dict[str, Any] = {}
    contents = {}
    stores = {}
    for shards in (1, 2):
        directory = root / f"shards-{shards}"
        started = time.perf_counter()
        metrics = ingest_in_workers(config, chunks, directory, "bench", shards)
        written = time.perf_counter()
        store = build_vector_store(config, directory, "bench")
        store.publish(len(chunks))
        finished = time.perf_counter()
        contents[shards] = store.stored_vectors()[0]
        stores[shards] = store
        working = metrics["embedding_seconds"] + metrics["write_seconds"]  # the slowest worker's, load excluded
        rates[str(shards)] = {
            "chunks_per_s": len(chunks) / working,
            "chunks_per_s_end_to_end": len(chunks) / (finished - started),
            "worker_start_seconds": (written - started) - working,
            "embed_and_write_seconds": working,
            "publish_seconds": finished - written,
        }
    rates["2"]["speedup"] = rates["2"]["chunks_per_s"] / rates["1"]["chunks_per_s"]
    rates["identical_ids_and_count"] = contents[1] == contents[2] and len(contents[1]) == len(chunks)
    return rates, stores[1]


def answering(
    make_generator: Any, embedder: LocalEmbedder, store: VectorStore, config: RunConfig, records: list[QaRecord]
) -> dict[str, Any]:
    """Questions/s per concurrency level; each level gets its own generator from `make_generator(level)`."""
    results: dict[str, Any] = {}
    sequential: list[dict[str, Any]] = []
    for level in LEVELS:
        generator: Generator = make_generator(level)
        try:
            agent = build_agent(embedder, store, generator, config)
            started = time.perf_counter()
            rows, latencies, failures = answer_all(agent, records, level).ordered()
            elapsed = time.perf_counter() - started
        finally:
            close = getattr(generator, "close", None)
            if close is not None:
                close()
        sequential = sequential or rows
        results[str(level)] = {
            "questions_per_s": len(rows) / elapsed,
            "seconds": elapsed,
            "latency_p50_ms": float(np.percentile(latencies, 50)),
            "generations": sum(1 + row["retries"] for row in rows),
            "identical_to_sequential": rows == sequential,
            "failed_questions": len(failures),
        }
    for level in LEVELS:
        results[str(level)]["speedup"] = results[str(level)]["questions_per_s"] / results["1"]["questions_per_s"]
    return results


def projections(ingest: dict[str, Any], fixed_delay: dict[str, Any], max_retries: int) -> dict[str, Any]:
    """Each environment's projected ingest and answering time, from the measured rates and its cdk.json sizing."""
    per_shard = ingest["1"]["chunks_per_s"]
    efficiency = ingest["2"]["chunks_per_s"] / (2 * per_shard)
    generations = 1 + max_retries  # worst case: every answer retried once with more context
    out: dict[str, Any] = {
        "formula": {
            "ingest_seconds": (
                "chunks / (chunks_per_s_1_shard * processing.instance_count * shard_efficiency), steady rates"
                " (worker start-up is a one-time cost)"
            ),
            "shard_efficiency": "chunks_per_s_2_shards / (2 * chunks_per_s_1_shard), measured",
            "answer_seconds": (
                "questions * generations_per_question * endpoint_latency_s / fixed_delay_speedup[c], c the largest"
                " measured level <= processing.generation_concurrency"
            ),
            "within_limit": "seconds (answers: worst case) <= processing.max_runtime_seconds (one job per step)",
            "assumptions": (
                "each processing instance embeds at the rate measured here for one shard (CPU MiniLM on this"
                " machine); in the cloud the embedding endpoint bounds it. The endpoint answers in endpoint_latency_s"
                " whatever the concurrency (it scales out, as the fixed-delay server does)."
            ),
        },
        "inputs": {
            "chunks": PROJECTED_CHUNKS,
            "questions": PROJECTED_QUESTIONS,
            "chunks_per_s_1_shard": per_shard,
            "shard_efficiency": efficiency,
            "endpoint_latency_s": ENDPOINT_LATENCY_S,
            "generations_per_question": {"typical": 1, "worst": generations},
        },
    }
    for name, env in load_app_config(committed_context(bundling=False)).environments.items():
        sizing = env.processing
        level = max(level for level in LEVELS if level <= sizing.generation_concurrency)
        speedup = fixed_delay[str(level)]["speedup"]
        answer = {
            kind: PROJECTED_QUESTIONS * count * ENDPOINT_LATENCY_S / speedup
            for kind, count in (("typical", 1), ("worst", generations))
        }
        out[name] = {
            "processing_instance_count": sizing.instance_count,
            "generation_concurrency": sizing.generation_concurrency,
            "processing_job_limit_s": sizing.max_runtime_seconds,
            "ingest_1m_chunks_s": (ingest_s := PROJECTED_CHUNKS / (per_shard * sizing.instance_count * efficiency)),
            "ingest_within_limit": ingest_s <= sizing.max_runtime_seconds,
            "answer_1000_questions_s": answer,
            "answers_within_limit": answer["worst"] <= sizing.max_runtime_seconds,
            "llm_endpoint": env.models.llm.enabled,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--questions", type=int, default=24, help="questions per level against the fixed delay")
    parser.add_argument("--delay", type=float, default=1.0, help="the fixed-delay server's seconds per answer")
    parser.add_argument("--llm-questions", type=int, default=8, help="questions per level on the embedded LLM")
    parser.add_argument("--ingest-limit", type=int, default=0, help="chunks to ingest (0: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    if not args.dataset.is_file():
        sys.exit(f"{args.dataset}: not found; pass --dataset PATH (make bench-scale PUBMEDQA=PATH)")
    config = load_config(None, parse_overrides(args.overrides))
    dataset = load_dataset(args.dataset)
    sources = [(r.record_id, f"context-{i}", c) for r in dataset.records for i, c in enumerate(r.contexts)]
    chunks = list(chunk_corpus(config, sources)[0].values())
    chunks = chunks[: args.ingest_limit] if args.ingest_limit else chunks
    embedder = LocalEmbedder(config.embedding_model, batch_size=config.embedding_batch_size, progress=False)

    with tempfile.TemporaryDirectory() as directory:
        ingest, store = ingest_rates(config, chunks, Path(directory))
        with serving(args.delay) as server:
            fixed = answering(
                lambda _: OpenAICompatibleGenerator(server.base_url, MODEL, top_logprobs=config.top_logprobs),
                embedder,
                store,
                config,
                dataset.records[: args.questions],
            )
        settings = {"context_size": config.local_llm_context_size, "threads": config.local_llm_threads}
        embedded = answering(
            lambda level: LocalLLMGenerator(
                config.local_llm_model,
                settings=ServerSettings(**settings, slots=level),
                top_logprobs=config.top_logprobs,
            ),
            embedder,
            store,
            config,
            dataset.records[: args.llm_questions],
        )
    result = {
        "dataset": args.dataset.name,
        "unique_chunks_ingested": len(chunks),
        "run_config": config.model_dump(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": os.getloadavg()[0],
        "ingest": ingest,
        "fixed_delay_s": args.delay,
        "fixed_delay_questions": min(args.questions, len(dataset.records)),
        "fixed_delay": fixed,
        "embedded_llm_questions": min(args.llm_questions, len(dataset.records)),
        "embedded_llm": embedded,
        "projections": projections(ingest, fixed, config.confidence_max_retries),
        "targets": {"fixed_delay_speedup_at_n": "0.8 * n for n <= 8, answers identical to sequential"},
    }
    write_result("scale", result)


if __name__ == "__main__":
    main()
