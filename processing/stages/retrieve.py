"""RAGRetrieval: the agent answers every question (retrieve -> grade -> generate -> assess, or abstain).

Each question's agent run is an MLflow trace (LangChain autolog over the LangGraph graph: one trace per
question, a span per node), and the answers file is logged as the run's artifact. A question that fails is
recorded with its error in its own file and the others are kept; the stage fails when more than
`max_failed_question_share` of the questions failed, and at once when the vector store fails (retrieve_errors).
The traces the server holds are counted back, so a dropped trace export shows as `traces_exported` < `questions`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from processing.agent.decision import parse_decision
from processing.config import RunConfig
from processing.context import StageContext
from processing.datasets import QaRecord
from processing.progress import Progress
from processing.stages.files import ANSWERS_FILE, FAILED_QUESTIONS_FILE, read_records, write_jsonl
from processing.stages.retrieve_errors import VectorStoreUnavailableError, check_failures, failure_row, guarded

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
        "truncated_in_reasoning": state.get("truncated_in_reasoning", 0),
        "final_top_k": state["top_k"],
        "attempts": state.get("attempts", []),
        "confidence": None if assessment is None else assessment.record(),
        "pruning": None if pruning is None else pruning.record(),
    }


@dataclass
class Answers:
    """What the questions gave so far, by input position: filled while they finish, so the answers of those
    done are kept when a later one fails, the store fails or the run is stopped."""

    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    latencies: dict[int, float] = field(default_factory=dict)
    failures: dict[int, dict[str, Any]] = field(default_factory=dict)

    def ordered(self) -> tuple[list[dict[str, Any]], list[float], list[dict[str, Any]]]:
        """Answer rows, latencies (ms) and failures, each in input order."""
        rows = [self.rows[i] for i in sorted(self.rows)]
        return rows, [self.latencies[i] for i in sorted(self.rows)], [self.failures[i] for i in sorted(self.failures)]


def answer_all(agent: Any, records: Sequence[QaRecord], concurrency: int, answers: Answers | None = None) -> Answers:
    """Answer every question with at most `concurrency` in flight (LangChain's Runnable `batch_as_completed`
    over a thread pool, so a remote endpoint's latency overlaps). A question's error is recorded in
    `answers.failures` and the others go on; a vector store failure stops the batch (VectorStoreUnavailableError)."""
    from langchain_core.runnables import RunnableLambda

    answers = Answers() if answers is None else answers
    progress = Progress(logger, "questions answered", len(records))

    def answer(record: QaRecord) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        state = agent.invoke({"question": record.question})
        return answer_row(record.record_id, state), (time.perf_counter() - started) * 1000

    batch = RunnableLambda(answer).batch_as_completed(
        list(records), config={"max_concurrency": concurrency}, return_exceptions=True
    )
    with closing(batch):  # leaving early cancels the questions not yet started
        for index, result in batch:
            if isinstance(result, VectorStoreUnavailableError):
                raise result
            if isinstance(result, Exception):
                record = records[index]
                logger.warning("question %s failed: %s: %s", record.record_id, type(result).__name__, result)
                answers.failures[index] = failure_row(record.record_id, record.question, result)
            else:
                answers.rows[index], answers.latencies[index] = result
            progress.tick()  # answered or failed, so the count reaches every question
    return answers


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


def _write(output_dir: Path, answers: Answers) -> tuple[list[dict[str, Any]], list[float], list[dict[str, Any]]]:
    rows, latencies, failures = answers.ordered()
    write_jsonl(output_dir / ANSWERS_FILE, rows)
    write_jsonl(output_dir / FAILED_QUESTIONS_FILE, failures)
    return rows, latencies, failures


def _log_traces(questions: int) -> None:
    """`traces_exported` beside `questions`: one trace per question, counted back from the tracking server."""
    import mlflow

    from processing.tracking import persisted_traces

    run = mlflow.active_run()
    try:
        exported = persisted_traces(run.info.experiment_id, run.info.run_id)
    except Exception as error:  # the count is a check on the traces; it never fails the answers
        logger.warning("could not count the run's traces: %s: %s", type(error).__name__, error)
        mlflow.set_tag("ragops.traces_exported", f"unknown: {type(error).__name__}: {error}"[:500])
        return
    if exported < questions:
        logger.warning("only %d of %d question traces reached the tracking server", exported, questions)
    mlflow.log_metrics({"traces_exported": exported})


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    from processing.agent.graph import build_agent

    generator = context.backends.generator()
    store = context.backends.vector_store(inputs["index"], context.index_version)
    label = f"vector store {config.vector_store} ({config.index_name}, version {context.index_version})"
    agent = build_agent(context.backends.embedder(), guarded(store, label), generator, config)
    records = read_records(inputs["prepared"])
    answers = Answers()
    mlflow.langchain.autolog(log_traces=True, silent=True)  # one trace per question
    started = time.perf_counter()
    try:
        answer_all(agent, records, config.generation_concurrency, answers)
    finally:
        mlflow.langchain.autolog(disable=True)
        mlflow.flush_trace_async_logging()
        rows, latencies, failures = _write(output_dir, answers)  # what is done is kept, whatever stopped the rest
    elapsed = time.perf_counter() - started
    mlflow.log_artifact(str(output_dir / ANSWERS_FILE))
    if failures:
        mlflow.log_artifact(str(output_dir / FAILED_QUESTIONS_FILE))
    _log_traces(len(records))
    mlflow.log_metrics(
        {
            "questions": len(records),
            "failed_questions": len(failures),
            "failed_question_share": len(failures) / len(records),
        }
    )
    check_failures(failures, len(records), config.max_failed_question_share)
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
            "max_failed_question_share": config.max_failed_question_share,
            **(generator.params() if hasattr(generator, "params") else {}),  # which weights, by hash
        }
    )
    mlflow.log_metrics(
        {
            "question_count": len(rows),
            "abstention_rate": sum(r["abstained"] for r in rows) / len(rows),
            "truncated_in_reasoning": sum(r["truncated_in_reasoning"] for r in rows),  # replies cut in <think>
            "agent_latency_p50_ms": float(np.percentile(latencies, 50)),
            "agent_latency_p95_ms": float(np.percentile(latencies, 95)),
            "questions_per_second": len(rows) / max(elapsed, 1e-9),
        }
    )
