"""What the real node says about our k-NN mappings, and a local `processing run` against it.

The node has no faiss native library (k-NN issue #2643): a faiss mapping is created and validated here, but no
document is ever written into one (the first would kill the shared node with UnsatisfiedLinkError).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opensearchpy import OpenSearch, RequestError

from processing.backends import factory
from processing.backends.opensearch_index import KnnMethod, create_version, index_body
from processing.config import RunConfig
from tests.engines.opensearch_helpers import corpus, store
from tests.processing.helpers import REPO_ROOT, write_sample


def test_the_deployed_faiss_mapping_is_accepted_by_the_node_with_ef_search_in_it(
    opensearch_url: str, node: OpenSearch, index_name: str, tmp_path: Path
) -> None:
    config = RunConfig(vector_store="opensearch", opensearch_endpoint=opensearch_url, opensearch_engine="faiss")
    deployed = factory.build_vector_store(config, tmp_path, "r1")
    version = f"{index_name}-r1"

    create_version(node, version, index_body(deployed.method, shards=2))

    field = node.indices.get_mapping(index=version)[version]["mappings"]["properties"]["embedding"]
    assert field == {
        "type": "knn_vector",
        "dimension": 384,
        "method": {
            "engine": "faiss",
            "space_type": "cosinesimil",
            "name": "hnsw",
            "parameters": {"ef_search": 100, "ef_construction": 128, "m": 16},
        },
    }
    assert "algo_param" not in json.dumps(node.indices.get_settings(index=version))


def test_the_node_refuses_ef_search_in_a_lucene_mapping_and_checks_faiss_values(
    node: OpenSearch, index_name: str
) -> None:
    lucene = index_body(KnnMethod("lucene", "cosine", 8, 16, 128, 100), shards=1)
    lucene["mappings"]["properties"]["embedding"]["method"]["parameters"]["ef_search"] = 100
    with pytest.raises(RequestError, match="Unknown parameter 'ef_search' found"):
        node.indices.create(index=f"{index_name}-lucene", body=lucene)
    faiss = index_body(KnnMethod("faiss", "cosine", 8, 16, 128, 100), shards=1)
    faiss["mappings"]["properties"]["embedding"]["method"]["parameters"]["ef_search"] = 0
    with pytest.raises(RequestError, match=r"parameter validation failed for Integer parameter \[ef_search\]"):
        node.indices.create(index=f"{index_name}-faiss", body=faiss)


def test_processing_run_against_the_local_node_publishes_and_retrieves(
    opensearch_url: str, node: OpenSearch, index_name: str, tmp_path: Path
) -> None:
    """The documented local use (docs/opensearch.md), with the extractive generator to keep the LLM out."""
    dataset = write_sample(tmp_path / "data", 3)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    options = {
        "vector_store": "opensearch",
        "opensearch_endpoint": opensearch_url,
        "index_name": index_name,
        "generator": "extractive",
        "chunk_size": 200,
        "chunk_overlap": 40,
    }
    settings = [item for name, value in options.items() for item in ("--set", f"{name}={value}")]
    done = subprocess.run(
        [sys.executable, "-m", "processing", "run", *settings, "--dataset", str(dataset), "--work-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    (version,) = node.indices.get_alias(name=index_name)
    mapping = node.indices.get_mapping(index=version)[version]["mappings"]["properties"]["embedding"]
    assert mapping["method"]["engine"] == "lucene"  # auto: the local node has no faiss library
    assert node.count(index=index_name)["count"] > 0
    report = json.loads(next(tmp_path.rglob("report.json")).read_text())
    assert report["question_count"] == 3
    assert report["metrics"]["hit_at_k"] > 0


def test_hybrid_publish_fails_on_a_node_without_neural_search_and_leaves_nothing(
    opensearch_url: str, node: OpenSearch, index_name: str
) -> None:
    """Why hybrid search is tested on the fake: its search pipeline processor comes from neural-search, which
    Maven Central does not serve. On such a node publish fails before the alias moves and deletes the version."""
    chunks, vectors = corpus(5)
    hybrid = store(opensearch_url, index_name, bm25_weight=0.3)
    hybrid.write(chunks, vectors)

    with pytest.raises(RequestError, match="Invalid processor type normalization-processor"):
        hybrid.publish(5)

    assert not node.indices.exists(index=f"{index_name}-r1")
    assert not node.indices.exists_alias(name=index_name)
