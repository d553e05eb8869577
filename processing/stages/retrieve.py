"""RAGRetrieval: the agent answers every question (retrieve -> grade -> generate -> assess, or abstain).

Each question's agent run is an MLflow trace (LangChain autolog over the LangGraph graph: one trace per
question, a span per node), and the answers file is logged as the run's artifact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from processing.agent.decision import parse_decision
from processing.config import RunConfig
from processing.context import StageContext
from processing.datasets import QaRecord
from processing.progress import Progress
from processing.stages.files import ANSWERS_FILE, read_records, write_jsonl

logger = logging.getLogger(__name__)


def answer_row(question_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the answers file: the answer, and how the agent's confidence edges decided on it."""
    generation, assessment, pruning = state.get("generation"), state.get("assessment"), state.get("pruning")
    return {
        "question_id": question_id,
        "question": state["question"],
        "retrieved": [{"chunk_id": h.chunk_id, "source_id": h.source_id, "score": h.score} for h in state["hits"]],
        "contexts": state.get("contexts", []),
        "answer": state["answer"],
        "decision": state["decision"],
        "abstained": state["abstained"],
        "abstain_reason": state["abstain_reason"] if state["abstained"] else None,
        "model_id": state["model_id"],
        "candidate_answer": None if generation is None else generation.text,
        "candidate_decision": None if generation is None else parse_decision(generation.text),
        "confidence_route": state.get("confidence_route", "not reached: no answer was generated"),
        "retries": state["attempt"],
        "final_top_k": state["top_k"],
        "attempts": state.get("attempts", []),
        "confidence": None if assessment is None else assessment.record(),
        "pruning": None if pruning is None else pruning.record(),
    }


def answer_all(agent: Any, records: Sequence[QaRecord], concurrency: int) -> tuple[list[dict[str, Any]], list[float]]:
    """Answer rows in input order and per-question latencies (ms), with at most `concurrency` questions in
    flight: LangChain's Runnable `batch` over a thread pool, so a remote endpoint's latency overlaps."""
    from langchain_core.runnables import RunnableLambda

    progress = Progress(logger, "questions answered", len(records))

    def answer(record: QaRecord) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        state = agent.invoke({"question": record.question})
        progress.tick()
        return answer_row(record.record_id, state), (time.perf_counter() - started) * 1000

    results = RunnableLambda(answer).batch(list(records), config={"max_concurrency": concurrency})
    return [row for row, _ in results], [latency for _, latency in results]


def confidence_status(rows: Sequence[Mapping[str, Any]]) -> str:
    """The `confidence` param: available, partial, or unavailable with the reason (never silently zero)."""
    scored = [r["confidence"] for r in rows if r["confidence"] is not None]
    available = sum(c["confidence_available"] for c in scored)
    if scored and available == len(scored):
        return "available"
    if available:
        return f"partial ({available} of {len(scored)} answers scored)"
    reasons = sorted({c["confidence_unavailable_reason"] for c in scored})
    return f"unavailable ({'; '.join(reasons) or 'no answer was generated'})"


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    from processing.agent.graph import build_agent

    generator = context.backends.generator()
    store = context.backends.vector_store(inputs["index"], context.index_version)
    agent = build_agent(context.backends.embedder(), store, generator, config)
    mlflow.langchain.autolog(log_traces=True, silent=True)  # one trace per question
    started = time.perf_counter()
    try:
        rows, latencies = answer_all(agent, read_records(inputs["prepared"]), config.generation_concurrency)
    finally:
        mlflow.langchain.autolog(disable=True)
        mlflow.flush_trace_async_logging()
    elapsed = time.perf_counter() - started
    write_jsonl(output_dir / ANSWERS_FILE, rows)
    mlflow.log_artifact(str(output_dir / ANSWERS_FILE))
    status = confidence_status(rows)
    if status != "available":
        logger.info("agent confidence edges skipped for unscored answers: confidence %s", status)
    mlflow.log_params(
        {
            "top_k": config.top_k,
            "relevance_threshold": config.relevance_threshold,
            "retrieval_mode": "hybrid" if config.opensearch_bm25_weight > 0 else "knn",
            "generator": config.generator,
            "generator_model_id": generator.model_id,
            "generator_kind": getattr(generator, "description", generator.model_id),
            "confidence": status,
            "confidence_retry_strategy": "more context: top_k doubled per retry",
            "confidence_measure": config.confidence_measure,
            "generation_concurrency": config.generation_concurrency,
            **(generator.params() if hasattr(generator, "params") else {}),  # which weights, by hash
        }
    )
    mlflow.log_metrics(
        {
            "question_count": len(rows),
            "abstention_rate": sum(r["abstained"] for r in rows) / len(rows),
            "agent_latency_p50_ms": float(np.percentile(latencies, 50)),
            "agent_latency_p95_ms": float(np.percentile(latencies, 95)),
            "questions_per_second": len(rows) / max(elapsed, 1e-9),
        }
    )
