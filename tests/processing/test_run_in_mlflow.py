"""What a finished run holds in MLflow for debugging it: a trace per question, the dataset input with its
digest, the per-question table, every stage's artifacts, and the judge metrics with their coverage. The
generator is the extractive baseline and the judge a real HTTP server replying in the OpenAI format."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from processing.backends.mlflow_judge import JUDGE_METRICS
from processing.config import RunConfig
from processing.context import Backends
from processing.runner import run_pipeline
from tests.processing.chat_server import serving
from tests.processing.helpers import runs_of, traces_of, write_sample
from tests.processing.recorded import payload

EXPERIMENT = "run-in-mlflow"
QUESTIONS = 3
TABLE_COLUMNS = {
    "question_id",
    "question",
    "reference",
    "retrieved_ids",
    "retrieved_scores",
    "contexts",
    "answer",
    "decision",
    "decision_source",
    "gold_decision",
    "hit_at_k",
    "answer_embedding_cosine",
    "correct",
    "confidence_route",
    "answer_sequence_confidence",
    *(f"{name}/{part}" for name in JUDGE_METRICS for part in ("score", "justification")),
}


def grade(body: dict) -> tuple[int, dict]:
    response = payload("openai_chat_logprobs")
    response["choices"][0]["message"]["content"] = "score: 4\njustification: Agrees with the reference."
    return 200, response


@pytest.fixture(scope="module")
def finished(tmp_path_factory, embedder, mlflow_db_uri):
    with pytest.MonkeyPatch.context() as patch, serving(grade) as judge_server:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_db_uri)
        root = tmp_path_factory.mktemp("mlflow-run")
        dataset = write_sample(root / "data", QUESTIONS)
        config = RunConfig(
            experiment_name=EXPERIMENT,
            chunk_size=200,
            chunk_overlap=20,
            generator="extractive",
            judge="openai",
            judge_url=judge_server.base_url,
            judge_model="judge",
        )
        with Backends(config, embedder) as backends:
            parent, report = run_pipeline(config, dataset, root / "work", backends=backends)
        children = {
            r.info.run_name: r
            for r in runs_of(mlflow_db_uri, EXPERIMENT)
            if r.data.tags.get("mlflow.parentRunId") == parent.run_id
        }
        yield {
            "client": MlflowClient(mlflow_db_uri),
            "uri": mlflow_db_uri,
            "parent": parent,
            "children": children,
            "report": report,
        }


def test_each_question_has_one_agent_trace(finished) -> None:
    retrieval = finished["children"]["RAGRetrieval"]
    mlflow.set_tracking_uri(finished["uri"])
    traces = traces_of(retrieval.info.experiment_id, retrieval.info.run_id)
    assert len(traces) == QUESTIONS
    assert all({"retrieve", "grade"} <= {span.name for span in trace.data.spans} for trace in traces)


def test_the_dataset_is_an_input_with_its_content_digest(finished) -> None:
    client, parent = finished["client"], finished["parent"]
    preparation = finished["children"]["DataPreparation"]
    digest = preparation.data.params["dataset_sha256"]
    assert len(digest) == 64
    for run_id in (parent.run_id, preparation.info.run_id):
        (logged,) = client.get_run(run_id).inputs.dataset_inputs
        assert (logged.dataset.name, logged.dataset.digest) == ("qa.json", digest[:32])
        assert logged.dataset.source_type == "local"  # built explicitly: MLflow does not guess it (and warn)
        assert json.loads(logged.dataset.source)["uri"].endswith("/data/qa.json")
    assert preparation.data.metrics["empty_document_count"] == 0
    assert preparation.data.params["empty_documents_dropped"] == "none"


def test_the_per_question_table_has_every_column(finished) -> None:
    evaluation = finished["children"]["RAGEvaluation"]
    path = finished["client"].download_artifacts(evaluation.info.run_id, "per_question.json")
    table = json.loads(Path(path).read_text(encoding="utf-8"))
    assert set(table["columns"]) >= TABLE_COLUMNS
    assert len(table["data"]) == QUESTIONS
    row = dict(zip(table["columns"], table["data"][0], strict=True))
    assert all(row[column] for column in ("question", "reference", "retrieved_ids", "contexts"))
    assert row["answer_correctness/v1/score"] == 4
    assert row["answer_correctness/v1/justification"] == "Agrees with the reference."


def test_stages_log_their_artifacts(finished) -> None:
    client, children = finished["client"], finished["children"]
    expected = {"DataChunking": "chunk_statistics.json", "DataIngestion": "ingest_manifest.json"}
    expected |= {"RAGRetrieval": "answers.jsonl"}
    for stage, artifact in expected.items():
        assert artifact in {a.path for a in client.list_artifacts(children[stage].info.run_id)}, stage
    manifest = client.download_artifacts(children["DataIngestion"].info.run_id, "ingest_manifest.json")
    ingested = json.loads(Path(manifest).read_text(encoding="utf-8"))
    # What this ingestion wrote is what the published index version holds.
    assert ingested["ingested_count"] == children["IndexPublish"].data.metrics["index_document_count"]
    assert ingested["index_version"] == children["IndexPublish"].data.params["index_version"]
    assert len(ingested["chunk_ids_sha256"]) == 64


def test_judge_metrics_are_logged_with_their_coverage_and_gate(finished) -> None:
    metrics = finished["children"]["RAGEvaluation"].data.metrics
    for name in JUDGE_METRICS:
        assert metrics[f"{name}/mean"] == 4.0
        assert metrics[f"{name}/coverage"] == 1.0
    assert metrics["judge_coverage"] == 1.0
    report = json.loads(finished["report"].read_text())
    gate = report["quality_gate"]
    assert (gate["verdict"], gate["passed"], gate["failures"]) == ("passed", True, [])
    assert [(c["metric"], c["value"], c["minimum"]) for c in gate["checked"]] == [("judge_coverage", 1.0, 0.9)]
    assert set(gate["not_checked"]) == {"hit_at_k", "mrr", "answer_embedding_cosine"}  # thresholds of 0
    assert finished["children"]["RAGEvaluation"].data.tags["ragops.quality_gate"] == "passed"
