"""The retrieval stage keeps what it answered: a question that fails is recorded with its error, the stage fails
only past `max_failed_question_share`, a vector store outage ends in one clear error, and the traces the tracking
server holds are counted back against the questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from opensearchpy import OpenSearch

from processing.backends.opensearch_store import OpenSearchVectorStore
from processing.config import RunConfig
from processing.context import Backends
from processing.runner import run_pipeline
from processing.stages.retrieve_errors import RetrievalFailedError
from tests.processing.chat_server import serving
from tests.processing.helpers import runs_of, sample_records, write_sample

QUESTIONS = 4
# TGI's answer to a prompt longer than the model's context: router/src/validation.rs
# (ValidationError::MaxTotalTokens), wrapped by InferError::ValidationError ("Input validation error: {0}") and
# returned by router/src/server.rs as HTTP 422 UNPROCESSABLE_ENTITY with ErrorResponse {error, error_type}. It is
# not transient: the same request fails the same way every time.
TGI_422 = {
    "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
    "Given: 3952 `inputs` tokens and 256 `max_new_tokens`",
    "error_type": "validation",
}


def failing_question() -> str:
    return list(sample_records(QUESTIONS).values())[1]["QUESTION"]


def chat(body: dict) -> tuple[int, Any]:
    """An OpenAI-format chat server that rejects one question as TGI does and answers the others."""
    if failing_question() in body["messages"][-1]["content"]:
        return 422, TGI_422
    message = {"role": "assistant", "content": "Yes."}
    return 200, {"model": "m", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


def config(experiment: str, url: str, **fields: Any) -> RunConfig:
    return RunConfig(experiment_name=experiment, generator="openai", generator_url=url, generator_model="m", **fields)


def stage(runs: list, name: str) -> Any:
    (found,) = [r for r in runs if r.info.run_name == name]
    return found


@pytest.mark.parametrize(("share", "passes"), [(0.5, True), (0.0, False)])
def test_a_question_the_server_rejects_is_recorded_and_the_others_are_kept(
    tmp_path: Path, embedder: Any, mlflow_store: str, share: float, passes: bool
) -> None:
    experiment = f"failed-question-{passes}"
    dataset = write_sample(tmp_path / "data", QUESTIONS)
    with serving(chat) as server:
        run = config(experiment, server.base_url, max_failed_question_share=share)
        if passes:
            run_pipeline(run, dataset, tmp_path / "work", backends=Backends(run, embedder))
        else:
            with pytest.raises(RetrievalFailedError, match=r"1 of 4 questions failed \(25\.0% > .*0\.0%\)"):
                run_pipeline(run, dataset, tmp_path / "work", backends=Backends(run, embedder))
    answers = [json.loads(line) for line in (tmp_path / "work" / "answers" / "answers.jsonl").read_text().splitlines()]
    (failed,) = [json.loads(line) for line in (tmp_path / "work" / "answers" / "failed_questions.jsonl").open()]
    assert len(answers) == QUESTIONS - 1
    assert failing_question() not in {a["question"] for a in answers}
    assert failed["question"] == failing_question()
    assert failed["error_type"] == "GeneratorError"
    assert "HTTP 422" in failed["error"]
    assert "Input validation error" in failed["error"]
    runs = runs_of(mlflow_store, experiment)
    retrieval = stage(runs, "RAGRetrieval")
    assert retrieval.data.metrics["questions"] == QUESTIONS
    assert retrieval.data.metrics["failed_questions"] == 1
    assert retrieval.data.metrics["traces_exported"] == QUESTIONS  # the failed question's trace too
    if passes:
        assert retrieval.info.status == "FINISHED"
        assert retrieval.data.metrics["question_count"] == QUESTIONS - 1
        assert stage(runs, "RAGEvaluation").info.status == "FINISHED"
    else:
        assert retrieval.info.status == "FAILED"
        assert "RetrievalFailedError: 1 of 4 questions failed" in retrieval.data.tags["ragops.error"]
        assert failing_question()[:40] not in retrieval.data.tags["ragops.error"]  # named by id, not text


def test_a_dropped_trace_export_shows_as_a_metric(
    tmp_path: Path, embedder: Any, mlflow_store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The export fails as it does when the role lacks sagemaker-mlflow:StartTrace: MLflow only logs a warning,
    and the stage still finishes; the count read back says how many traces are missing."""
    from mlflow.tracing.client import TracingClient

    def denied(*_: object, **__: object) -> None:
        raise MlflowException("not authorized to perform: sagemaker-mlflow:StartTrace", error_code="PERMISSION_DENIED")

    monkeypatch.setattr(TracingClient, "start_trace", denied)
    run = RunConfig(experiment_name="dropped-traces", generator="extractive")
    run_pipeline(run, write_sample(tmp_path / "data", 2), tmp_path / "work", backends=Backends(run, embedder))
    retrieval = stage(runs_of(mlflow_store, "dropped-traces"), "RAGRetrieval")
    assert retrieval.info.status == "FINISHED"
    assert (retrieval.data.metrics["traces_exported"], retrieval.data.metrics["questions"]) == (0, 2)
    assert "only 0 of 2 question traces reached the tracking server" in caplog.text


def test_a_vector_store_outage_during_retrieval_is_one_clear_error(
    tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real opensearch-py client whose server is gone (nothing listens on its port): the stage stops at the
    first search with an error naming the store, recorded on its run, and the CLI prints one line, no traceback."""
    import socket

    from processing.backends import factory
    from processing.cli import main

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OpenSearch(hosts=[{"host": "127.0.0.1", "port": port}], timeout=2, max_retries=0)
    work, dataset = tmp_path / "work", write_sample(tmp_path / "data", 2)
    common = ["--set", "experiment_name=store-outage", "--set", "generator=extractive"]
    assert (
        main(["stage", "prepare", "--input", f"dataset={dataset}", "--output-dir", str(work / "prepared"), *common])
        == 0
    )
    (work / "index").mkdir()
    outage = OpenSearchVectorStore(client, index="ragops-chunks", version="v1", dimension=384)
    monkeypatch.setattr(factory, "build_vector_store", lambda *_: outage)
    capsys.readouterr()
    inputs = ["--input", f"prepared={work / 'prepared'}", "--input", f"index={work / 'index'}"]
    assert main(["stage", "retrieve", *inputs, "--output-dir", str(work / "answers"), *common]) == 1
    stderr = capsys.readouterr().err
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: vector store faiss (ragops-chunks, version ")
    assert "search failed during retrieval: ConnectionError" in last
    assert "Traceback" not in stderr
    retrieval = stage(runs_of(mlflow_store, "store-outage"), "RAGRetrieval")
    assert retrieval.info.status == "FAILED"
    assert retrieval.data.tags["ragops.error"].startswith("VectorStoreUnavailableError: vector store faiss")
