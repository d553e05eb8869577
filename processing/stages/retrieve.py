"""RAGRetrieval: the agent answers every question (retrieve -> grade -> generate, or abstain)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from processing.config import RunConfig
from processing.context import StageContext
from processing.stages.files import ANSWERS_FILE, read_records, write_jsonl


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    from processing.agent.graph import build_agent

    generator = context.backends.generator()
    agent = build_agent(
        context.backends.embedder(),
        context.backends.vector_store(inputs["index"]),
        generator,
        top_k=config.top_k,
        relevance_threshold=config.relevance_threshold,
        max_tokens=config.max_answer_tokens,
        hybrid=config.opensearch_bm25_weight > 0,
    )
    rows, latencies = [], []
    for record in read_records(inputs["prepared"]):
        started = time.perf_counter()
        state = agent.invoke({"question": record.question})
        latencies.append((time.perf_counter() - started) * 1000)
        rows.append(
            {
                "question_id": record.record_id,
                "question": record.question,
                "retrieved": [
                    {"chunk_id": h.chunk_id, "source_id": h.source_id, "score": h.score} for h in state["hits"]
                ],
                "contexts": [h.text for h in state["relevant"]],
                "answer": state["answer"],
                "decision": state["decision"],
                "abstained": state["abstained"],
                "model_id": state["model_id"],
            }
        )
    write_jsonl(output_dir / ANSWERS_FILE, rows)
    mlflow.log_params(
        {
            "top_k": config.top_k,
            "relevance_threshold": config.relevance_threshold,
            "retrieval_mode": "hybrid" if config.opensearch_bm25_weight > 0 else "knn",
            "generator": config.generator,
            "generator_model_id": generator.model_id,
            "generator_kind": getattr(generator, "description", generator.model_id),
        }
    )
    mlflow.log_metrics(
        {
            "question_count": len(rows),
            "abstention_rate": sum(r["abstained"] for r in rows) / len(rows),
            "agent_latency_p50_ms": float(np.percentile(latencies, 50)),
            "agent_latency_p95_ms": float(np.percentile(latencies, 95)),
        }
    )
