"""The whole pipeline with `vector_store=opensearch` (in-memory cluster behind a real Connection, local MiniLM),
measured against the faiss run on the same data; hybrid retrieval; and the fail-fast CLI without credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from processing.agent.graph import build_agent
from processing.backends import cloud, factory
from processing.backends.extractive import ExtractiveGenerator
from processing.backends.faiss_store import FaissStore, HnswParams
from processing.config import RunConfig
from processing.context import Backends
from processing.interfaces import Chunk
from processing.runner import run_pipeline
from tests.processing.cloud.conftest import fake_session
from tests.processing.cloud.fake_opensearch import FakeCluster, connection_for
from tests.processing.helpers import REPO_ROOT, runs_of, write_sample

EXPERIMENT = "opensearch-wiring"
HYBRID = RunConfig(
    top_k=2,
    relevance_threshold=0.3,
    max_answer_tokens=64,
    vector_store="opensearch",
    opensearch_endpoint="vpc-ragops.us-east-1.es.amazonaws.com",
    opensearch_bm25_weight=0.3,
)
DOMAIN = "https://vpc-ragops-dev-abc123.us-east-1.es.amazonaws.com"
OPENSEARCH = {"vector_store": "opensearch", "opensearch_endpoint": DOMAIN, "aws_region": "us-east-1"}


def use_cluster(patch: pytest.MonkeyPatch, cluster: FakeCluster) -> None:
    """Route `vector_store=opensearch` to the in-memory cluster, signed with static test credentials."""
    store = partial(cloud.opensearch_store, session=fake_session(), connection_class=connection_for(cluster))
    patch.setitem(factory.VECTOR_STORES, "opensearch", store)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, embedder: Any, local_llm: Any, mlflow_db_uri: str) -> dict[str, Any]:
    cluster = FakeCluster(data_nodes=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_db_uri)
        use_cluster(patch, cluster)
        root = tmp_path_factory.mktemp("opensearch-run")
        dataset = write_sample(root / "data", 4)
        results = {}
        for name, extra in [("faiss", {}), ("opensearch", OPENSEARCH)]:
            config = RunConfig(experiment_name=EXPERIMENT, chunk_size=200, chunk_overlap=20, **extra)
            backends = Backends(config, embedder, generator_instance=local_llm)  # the session's one server
            parent, report = run_pipeline(config, dataset, root / name, backends=backends)
            results[name] = {"parent": parent, "report": json.loads(report.read_text()), "dir": root / name}
    return {"cluster": cluster, "uri": mlflow_db_uri, **results}


def stage_metrics(uri: str, parent_id: str, run_name: str) -> dict[str, float]:
    children = [r for r in runs_of(uri, EXPERIMENT) if r.data.tags.get("mlflow.parentRunId") == parent_id]
    return next(c for c in children if c.info.run_name == run_name).data.metrics


def test_ingest_writes_every_unique_chunk_once_and_publish_moves_the_alias(runs: dict[str, Any]) -> None:
    cluster, uri = runs["cluster"], runs["uri"]
    parent = runs["opensearch"]["parent"].run_id
    version = f"ragops-chunks-{parent}"  # the run's index version is named by its parent run
    unique = stage_metrics(uri, parent, "DataChunking")["total_unique_chunks_final"]
    assert stage_metrics(uri, parent, "DataIngestion")["ingested_count"] == unique > 0
    published = stage_metrics(uri, parent, "IndexPublish")
    assert published["expected_chunk_count"] == published["index_document_count"] == unique
    assert cluster.alias_targets("ragops-chunks") == [version]
    assert len(cluster.indices[version].docs) == unique
    assert cluster.calls().count(f"PUT /{version}") == 1
    calls = cluster.calls()
    assert (
        calls.index(f"POST /{version}/_count")
        < calls.index(f"PUT /{version}/_settings")
        < calls.index("POST /_aliases")
    )
    assert cluster.indices[version].settings["index"]["refresh_interval"] == "1s"
    mapping = cluster.indices[version].mappings["properties"]["embedding"]
    assert mapping["dimension"] == 384
    assert mapping["method"]["space_type"] == "cosinesimil"
    assert not (runs["opensearch"]["dir"] / "index" / "ragops-chunks").exists()  # no local index was written
    assert (runs["faiss"]["dir"] / "index" / "ragops-chunks" / "manifest.json").is_file()


def test_retrieval_through_opensearch_measures_what_faiss_measures(runs: dict[str, Any]) -> None:
    faiss, opensearch = runs["faiss"]["report"], runs["opensearch"]["report"]
    assert opensearch["question_count"] == faiss["question_count"] == 4
    for metric in ("hit_at_k", "mrr", "ndcg_at_k", "answer_embedding_cosine", "token_f1"):
        assert opensearch["metrics"][metric] == pytest.approx(faiss["metrics"][metric], abs=1e-4), metric
    assert opensearch["metrics"]["hit_at_k"] > 0.5
    version = f"ragops-chunks-{runs['opensearch']['parent'].run_id}"
    searches = [r for r in runs["cluster"].requests if r.path == f"/{version}/_search"]
    assert len(searches) == 4
    assert all(set(r.body["query"]) == {"knn"} and r.body["size"] == 5 for r in searches)


def test_both_parent_runs_finished_with_the_store_recorded(runs: dict[str, Any]) -> None:
    client = MlflowClient(runs["uri"])
    for name in ("faiss", "opensearch"):
        run = client.get_run(runs[name]["parent"].run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params["vector_store"] == name
        children = [
            r for r in runs_of(runs["uri"], EXPERIMENT) if r.data.tags.get("mlflow.parentRunId") == run.info.run_id
        ]
        retrieval = next(c for c in children if c.info.run_name == "RAGRetrieval")
        assert retrieval.data.params["retrieval_mode"] == "knn"


def test_hybrid_retrieval_sends_the_question_text_through_the_normalisation_pipeline(
    embedder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = FakeCluster()
    use_cluster(monkeypatch, cluster)
    store = factory.build_vector_store(RunConfig(**OPENSEARCH, opensearch_bm25_weight=0.4), tmp_path, "r1")
    chunks = [
        Chunk("c-statin", "Statins lower LDL cholesterol.", "doc-1"),
        Chunk("c-fever", "Aspirin reduces fever.", "doc-2"),
    ]
    store.write(chunks, embedder.embed([c.text for c in chunks]))
    store.publish(2)
    processor = cluster.pipelines["ragops-chunks-hybrid"]["phase_results_processors"][0]["normalization-processor"]
    assert processor["combination"]["parameters"]["weights"] == [0.4, 0.6]
    source = {"chunk_id": "c-statin", "source_id": "doc-1", "text": chunks[0].text, "metadata": {}}
    hit = {"_index": "ragops-chunks-r1", "_id": "c-statin", "_score": 0.9, "_source": source}
    response = {"took": 1, "hits": {"max_score": 0.9, "hits": [hit]}}
    cluster.respond_once("POST", "/ragops-chunks-r1/_search", 200, response)
    generator = ExtractiveGenerator(embedder, sentences=1)
    agent = build_agent(embedder, store, generator, HYBRID)

    state = agent.invoke({"question": "Do statins lower cholesterol?"})

    request = cluster.last("POST", "/ragops-chunks-r1/_search")
    assert request.params == {"search_pipeline": "ragops-chunks-hybrid"}
    text_query, knn_query = request.body["query"]["hybrid"]["queries"]
    assert text_query == {"match": {"text": {"query": "Do statins lower cholesterol?"}}}
    np.testing.assert_allclose(
        knn_query["knn"]["embedding"]["vector"], embedder.embed(["Do statins lower cholesterol?"])[0], rtol=1e-5
    )
    assert [(h.chunk_id, h.score) for h in state["hits"]] == [("c-statin", 0.9)]
    assert not state["abstained"]


def test_hybrid_retrieval_needs_a_store_that_supports_it(embedder: Any, tmp_path: Path) -> None:
    store = FaissStore(tmp_path, version="r1", params=HnswParams(16, 128, 100, "cosinesimil"), embedding_model="m")
    with pytest.raises(ValueError, match="hybrid retrieval needs a store with hybrid_search; FaissStore has none"):
        build_agent(embedder, store, ExtractiveGenerator(embedder), HYBRID)


@pytest.mark.parametrize("command", ["run", "stage"])
def test_cli_without_credentials_fails_fast_in_one_line_and_records_nothing(tmp_path: Path, command: str) -> None:
    dataset = write_sample(tmp_path / "data", 2)
    tracking_db = tmp_path / "mlflow.db"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env |= {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tracking_db}",
    }
    selection = ["--set", "embeddings=sagemaker", "--set", "sagemaker_embedding_endpoint=ragops-dev-embedding"]
    output = tmp_path / "work"
    arguments = {
        "run": ["run", *selection, "--dataset", str(dataset), "--work-dir", str(output)],
        "stage": ["stage", "prepare", *selection, "--input", f"dataset={dataset}", "--output-dir", str(output)],
    }[command]

    done = subprocess.run(
        [sys.executable, "-m", "processing", *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: embeddings=sagemaker needs AWS credentials: none found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and"
        " AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached)"
    ]
    assert done.stdout == ""
    assert not tracking_db.exists()  # not even an experiment: no parent run left RUNNING or FINISHED
    assert not output.exists()
