"""A real local pipeline run (MiniLM, faiss HNSW, LangGraph agent on the embedded LLM, sqlite MLflow) in both
modes: single reuses the session's llama-server, multi's retrieval stage starts and stops its own."""

import json

import pytest
from mlflow.tracking import MlflowClient

from processing.cli import main
from processing.config import RunConfig
from processing.context import Backends
from processing.runner import run_pipeline
from processing.stages.registry import STAGES
from tests.processing.helpers import runs_of, write_sample
from tests.processing.local_llm.processes import llama_servers

EXPERIMENT = "e2e-modes"
QUESTIONS = 6
CONFIG = RunConfig(experiment_name=EXPERIMENT, chunk_size=200, chunk_overlap=20, max_answer_tokens=48)
EXPECTED = {
    "DataPreparation": (
        ["dataset", "empty_documents_dropped"],
        ["total_qa_pairs", "unique_questions", "avg_context_length", "pii_email_address_count", "empty_document_count"],
    ),
    "DataChunking": (
        ["chunking_strategy_type", "chunking_strategy_chunk_size"],
        ["total_source_contexts_entries", "total_contexts_chunked", "total_unique_chunks_final"],
    ),
    "DataIngestion": (["embedding_model", "hnsw_m", "space_type", "index_version"], ["ingested_count"]),
    "IndexPublish": (["index_name", "index_version"], ["expected_chunk_count", "index_document_count"]),
    "RAGRetrieval": (["generator_kind", "top_k", "confidence"], ["abstention_rate", "question_count"]),
    "RAGEvaluation": (
        ["metric_answer_embedding_cosine", "decision_majority_label"],
        ["hit_at_k", "mrr", "ndcg_at_k", "answer_embedding_cosine", "decision_accuracy_majority_baseline"],
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, embedder, local_llm, mlflow_db_uri):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_db_uri)
        root = tmp_path_factory.mktemp("e2e")
        dataset = write_sample(root / "data", QUESTIONS)
        backends = Backends(CONFIG, embedder, generator_instance=local_llm)
        servers_before = llama_servers()
        single = run_pipeline(CONFIG, dataset, root / "single", backends=backends)
        multi = run_pipeline(CONFIG, dataset, root / "multi", mode="multi")
        yield {"single": single, "multi": multi, "uri": mlflow_db_uri, "servers_left": llama_servers() - servers_before}


def test_single_and_multi_process_runs_measure_the_same(runs) -> None:
    reports = {mode: json.loads(runs[mode][1].read_text()) for mode in ("single", "multi")}
    single, multi = reports["single"], reports["multi"]
    assert single["metrics"].keys() == multi["metrics"].keys()
    for name, value in single["metrics"].items():
        assert multi["metrics"][name] == pytest.approx(value, abs=1e-6), name
        assert 0.0 <= value <= 1.0
    assert single["question_count"] == multi["question_count"] == QUESTIONS
    assert single["confidence_metrics"] == pytest.approx(multi["confidence_metrics"], abs=1e-6)  # greedy decoding
    assert single["skipped_metrics"]["answer_correctness/v1/mean"].startswith("not judged: judge=none")
    confidence = single["confidence_metrics"]  # the embedded LLM returns log-probabilities: real numbers
    for name in (
        "mean_sequence_confidence",
        "mean_decision_label_confidence",
        "confidence_ece",
        "flagged_answer_share",
    ):
        assert 0.0 <= confidence[name] <= 1.0, name
    if "confidence_auroc" in confidence:
        assert 0.0 <= confidence["confidence_auroc"] <= 1.0
    else:  # six answers can all be right or all wrong: then AUROC is undefined, and says so
        assert single["skipped_metrics"]["confidence_auroc"].startswith("AUROC needs both correct and incorrect")
    assert single["skipped_metrics"]["prompt_tokens_saved_total"] == "prune_contexts is off"
    assert set(single) == {
        "warnings",
        "schema_version",
        "mlflow_experiment",
        "mlflow_parent_run_id",
        "run_config",
        "metrics",
        "confidence_metrics",
        "skipped_metrics",
        "question_count",
        "quality_gate",
        "identity",
    }
    # A local run names no environment or pipeline execution, so the promotion hook can never take its report.
    assert single["identity"] == {"environment": None, "pipeline_execution_arn": None}
    assert single["run_config"] == CONFIG.model_dump()


def test_no_local_llm_server_outlives_its_run(runs) -> None:
    assert runs["servers_left"] == set()


def test_each_parent_holds_the_six_named_nested_runs(runs) -> None:
    client = MlflowClient(runs["uri"])
    all_runs = runs_of(runs["uri"], EXPERIMENT)
    for mode in ("single", "multi"):
        parent_id = runs[mode][0].run_id
        assert client.get_run(parent_id).info.status == "FINISHED"
        assert client.get_run(parent_id).data.metrics["hit_at_k"] >= 0.0
        children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
        assert sorted(r.info.run_name for r in children) == sorted(s.run_name for s in STAGES)
        for child in children:
            assert child.info.status == "FINISHED"
            params, metrics = EXPECTED[child.info.run_name]
            assert set(params) <= set(child.data.params), child.info.run_name
            assert set(metrics) <= set(child.data.metrics), child.info.run_name
        retrieval = next(c for c in children if c.info.run_name == "RAGRetrieval")
        assert retrieval.data.params["confidence"] == "available"
        assert retrieval.data.params["generator_model_id"] == "smollm2-135m-instruct"
        assert len(retrieval.data.params["generator_weights_sha256"]) == 64
        evaluation = next(c for c in children if c.info.run_name == "RAGEvaluation")
        artifacts = {a.path for a in client.list_artifacts(evaluation.info.run_id)}
        assert {"per_question.json", "report.json"} <= artifacts
        preparation = next(c for c in children if c.info.run_name == "DataPreparation")
        assert "context_length_histogram.png" in {a.path for a in client.list_artifacts(preparation.info.run_id)}


def test_compare_prints_both_runs_and_writes_a_chart(runs, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", runs["uri"])
    chart = tmp_path / "compare.png"
    assert main(["compare", "--last", "2", "--experiment", EXPERIMENT, "--chart", str(chart)]) == 0
    out = capsys.readouterr().out
    assert out.count("RecursiveChunker-") == 2
    assert "hit_at_k" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
