"""Hybrid retrieval through the agent (on the in-memory cluster: the hybrid query and its normalization-processor
come from the neural-search plugin, which Maven Central does not serve, so the real node cannot run them), and
the fail-fast CLI without credentials. The pipeline on a real node: tests/engines."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from processing.agent.graph import build_agent
from processing.backends import cloud, factory
from processing.backends.extractive import ExtractiveGenerator
from processing.backends.faiss_store import FaissStore, HnswParams
from processing.config import RunConfig
from processing.interfaces import Chunk
from tests.processing.cloud.conftest import fake_session
from tests.processing.cloud.fake_opensearch import FakeCluster, connection_for
from tests.processing.helpers import REPO_ROOT, write_sample

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
