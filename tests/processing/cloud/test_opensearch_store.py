from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import requests
from opensearchpy import AWSV4SignerAuth

from processing.backends.errors import CloudBackendError
from processing.backends.opensearch_client import opensearch_client
from processing.backends.opensearch_index import IngestError
from processing.backends.opensearch_search import similarity
from processing.backends.opensearch_store import OpenSearchVectorStore
from processing.interfaces import Chunk, CountMismatchError, VectorStore
from tests.processing.cloud.conftest import fake_session
from tests.processing.cloud.fake_opensearch import FakeCluster, connection_for

ENDPOINT = "https://vpc-ragops-dev-abc123.us-east-1.es.amazonaws.com"
CHUNKS = [
    Chunk("c-aspirin", "Aspirin reduces fever.", "doc-1", {"page": "1"}),
    Chunk("c-statin", "Statins lower cholesterol.", "doc-2"),
    Chunk("c-insulin", "Insulin regulates glucose.", "doc-3"),
]
VECTORS = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.6, 0.8]], dtype=np.float32)
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make_store(cluster: FakeCluster, version: str = "r1", **overrides: Any) -> OpenSearchVectorStore:
    client = opensearch_client(
        ENDPOINT, region="us-east-1", session=fake_session(), connection_class=connection_for(cluster)
    )
    arguments: dict[str, Any] = {
        "index": "pubmed",
        "version": version,
        "dimension": 4,
        "space_type": "cosine",
        "m": 16,
        "ef_construction": 200,
        "ef_search": 64,
        "replicas": 2,
        "bulk_initial_backoff": 0,
        "clock": cluster.clock,
    }
    return OpenSearchVectorStore(client, **(arguments | overrides))


def ingested(cluster: FakeCluster, version: str = "r1", chunks=CHUNKS, vectors=VECTORS, **overrides: Any):
    store = make_store(cluster, version, **overrides)
    store.write(chunks, vectors)
    store.publish(len({c.chunk_id for c in chunks}))
    return store


def test_client_is_sigv4_signed_tls_with_the_injected_connection_class() -> None:
    cluster = FakeCluster()
    client = opensearch_client(
        ENDPOINT, region="us-east-1", session=fake_session(), connection_class=connection_for(cluster)
    )
    connection = client.transport.get_connection()
    assert connection.init_kwargs["host"] == "vpc-ragops-dev-abc123.us-east-1.es.amazonaws.com"
    assert connection.init_kwargs["port"] == 443
    assert connection.init_kwargs["use_ssl"] is True
    assert connection.init_kwargs["verify_certs"] is True
    auth = connection.init_kwargs["http_auth"]
    assert isinstance(auth, AWSV4SignerAuth)
    signed = auth(requests.Request("GET", f"{ENDPOINT}/_cluster/health").prepare())
    assert "/us-east-1/es/aws4_request" in signed.headers["Authorization"]
    assert client.transport.retry_on_status == (500, 502, 503, 504)


def test_a_loopback_node_gets_a_plain_http_client_without_signing() -> None:
    client = opensearch_client("http://127.0.0.1:9200")
    connection = client.transport.get_connection()
    assert connection.host == "http://127.0.0.1:9200"
    assert "http_auth" not in client.transport.kwargs
    assert client.transport.retry_on_status == (500, 502, 503, 504)


@pytest.mark.parametrize("endpoint", ["http://vpc-ragops.us-east-1.es.amazonaws.com", "http://10.0.0.5:9200"])
def test_plain_http_to_anything_but_loopback_is_refused(endpoint: str) -> None:
    with pytest.raises(CloudBackendError, match="is not an https://host"):
        opensearch_client(endpoint, region="us-east-1", session=fake_session())


@pytest.mark.parametrize(("data_nodes", "requested", "expected"), [(3, 1, 1), (3, 5, 2), (2, 0, 0), (1, 2, 0)])
def test_replicas_restored_at_publish_never_exceed_data_nodes_minus_one(
    data_nodes: int, requested: int, expected: int
) -> None:
    cluster = FakeCluster(data_nodes=data_nodes)
    ingested(cluster, replicas=requested)
    assert cluster.last("PUT", "/pubmed-r1").body["settings"]["index"]["number_of_replicas"] == 0
    assert cluster.last("PUT", "/pubmed-r1/_settings").body["index"]["number_of_replicas"] == expected


def test_bulk_requests_are_bounded_in_bytes() -> None:
    cluster = FakeCluster()
    chunks = [Chunk(f"c-{i}", "word " * 60, f"doc-{i}") for i in range(40)]
    vectors = np.tile(np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32), (40, 1))
    assert make_store(cluster, bulk_max_bytes=2_000).write(chunks, vectors) == 40

    bulks = [request for request in cluster.requests if request.path == "/_bulk"]
    assert len(bulks) > 5
    assert max(request.size for request in bulks) <= 2_000
    assert sum(len(request.body) // 2 for request in bulks) == 40


def test_failed_expiry_is_logged_and_the_publish_still_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    cluster = FakeCluster(clock=clock)
    ingested(cluster, "r1", retention_hours=1)
    clock.now += 2 * HOUR
    cluster.respond_once("DELETE", "/pubmed-r1", 403, {"error": {"type": "security_exception"}, "status": 403})
    with caplog.at_level(logging.ERROR):
        ingested(cluster, "r2", retention_hours=1)
    assert "published pubmed-r2 but could not delete expired versions of pubmed" in caplog.text
    assert cluster.alias_targets("pubmed") == ["pubmed-r2"]


def test_partial_bulk_failure_reports_each_item_and_leaves_the_alias() -> None:
    cluster = FakeCluster()
    ingested(cluster, "r1")
    cluster.reject_item("c-statin", 400)

    with pytest.raises(IngestError) as raised:
        make_store(cluster, "r2").write(CHUNKS, VECTORS)

    assert str(raised.value) == (
        "1 of 3 chunks failed to index into pubmed-r2: id=c-statin status=400 mapper_parsing_exception:"
        " failed to index [c-statin]"
    )
    assert len(raised.value.item_errors) == 1
    assert cluster.alias_targets("pubmed") == ["pubmed-r1"]


def test_rejected_items_429_are_retried_alone_then_succeed() -> None:
    cluster = FakeCluster()
    cluster.reject_item("c-insulin", 429, 429)

    assert make_store(cluster, bulk_max_retries=3).write(CHUNKS, VECTORS) == 3

    bulks = [request.body for request in cluster.requests if request.path == "/_bulk"]
    assert len(bulks) == 3
    assert [line["index"]["_id"] for line in bulks[1][0::2]] == ["c-insulin"]


def test_items_still_rejected_when_retries_run_out_fail_the_write() -> None:
    cluster = FakeCluster()
    cluster.reject_item("c-insulin", 429, 429)
    with pytest.raises(IngestError, match="id=c-insulin status=429 es_rejected_execution_exception"):
        make_store(cluster, bulk_max_retries=1).write(CHUNKS, VECTORS)


def test_whole_request_429_then_success() -> None:
    cluster = FakeCluster()
    cluster.respond_once("POST", "/_bulk", 429, {"error": {"type": "too_many_requests"}, "status": 429})
    assert make_store(cluster).write(CHUNKS, VECTORS) == 3
    assert [call for call in cluster.calls() if call == "POST /_bulk"] == ["POST /_bulk"] * 2


def test_bulk_503_is_retried_by_the_client_transport() -> None:
    cluster = FakeCluster()
    cluster.respond_once("POST", "/_bulk", 503, {"error": {"type": "unavailable"}, "status": 503})
    assert make_store(cluster, bulk_max_retries=0).write(CHUNKS, VECTORS) == 3
    assert [call for call in cluster.calls() if call == "POST /_bulk"] == ["POST /_bulk"] * 2


def test_replicas_that_never_turn_green_fail_the_publish_before_the_alias_moves() -> None:
    cluster = FakeCluster(data_nodes=2)
    store = make_store(cluster, replicas=1)
    store.write(CHUNKS, VECTORS)
    timed_out = {**cluster.health(), "status": "yellow", "timed_out": True, "unassigned_shards": 1}
    cluster.respond_once("GET", "/_cluster/health/pubmed-r1", 408, timed_out)

    with pytest.raises(IngestError, match="index pubmed-r1 is yellow after 600s: its replicas were not assigned"):
        store.publish(3)

    assert "POST /_aliases" not in cluster.calls()
    assert cluster.indices == {}


def test_failed_cleanup_is_logged_and_the_publish_error_still_raised(caplog: pytest.LogCaptureFixture) -> None:
    cluster = FakeCluster()
    store = make_store(cluster)
    store.write(CHUNKS[:2], VECTORS[:2])
    cluster.respond_once("DELETE", "/pubmed-r1", 403, {"error": {"type": "security_exception"}, "status": 403})
    with caplog.at_level(logging.ERROR), pytest.raises(CountMismatchError):
        store.publish(3)
    assert "could not delete the unpublished index pubmed-r1" in caplog.text


def test_hybrid_search_registers_the_normalisation_pipeline_and_uses_it() -> None:
    cluster = FakeCluster()
    store = ingested(cluster, bm25_weight=0.3)
    assert "PUT /_search/pipeline/pubmed-hybrid" in cluster.calls()
    assert cluster.calls().index("PUT /_search/pipeline/pubmed-hybrid") < cluster.calls().index("POST /_aliases")
    assert cluster.pipelines["pubmed-hybrid"] == {
        "description": "BM25 + k-NN score normalisation for pubmed",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.7]}},
                }
            }
        ],
    }
    source = {"chunk_id": "c-statin", "source_id": "doc-2", "text": "Statins lower cholesterol.", "metadata": {}}
    hit = {"_index": "pubmed-r1", "_id": "c-statin", "_score": 0.7, "_source": source}
    cluster.respond_once("POST", "/pubmed-r1/_search", 200, {"took": 4, "hits": {"max_score": 0.7, "hits": [hit]}})

    hits = store.hybrid_search("cholesterol drugs", np.array([0.0, 1.0, 0.0, 0.0]), k=1)

    request = cluster.last("POST", "/pubmed-r1/_search")
    assert request.params == {"search_pipeline": "pubmed-hybrid"}
    assert request.body == {
        "size": 1,
        "_source": {"excludes": ["embedding"]},
        "query": {
            "hybrid": {
                "queries": [
                    {"match": {"text": {"query": "cholesterol drugs"}}},
                    {"knn": {"embedding": {"vector": [0.0, 1.0, 0.0, 0.0], "k": 1}}},
                ]
            }
        },
    }
    assert [(h.chunk_id, h.score) for h in hits] == [("c-statin", 0.7)]


def test_hybrid_search_without_a_weight_is_a_configuration_error() -> None:
    with pytest.raises(CloudBackendError, match="needs bm25_weight"):
        make_store(FakeCluster()).hybrid_search("q", np.zeros(4), k=1)


def test_count_of_a_never_ingested_version_is_zero_and_the_class_is_a_vector_store() -> None:
    store = make_store(FakeCluster())
    assert store.count() == 0
    assert isinstance(store, VectorStore)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"space_type": "dot"}, "space_type must be one of cosine, innerproduct, l2"),
        ({"engine": "nmslib"}, "engine must be one of faiss, lucene"),
        ({"index": "PubMed"}, "is not a valid OpenSearch index name"),
        ({"version": "run-1"}, "index version 'run-1' must be 1-64 lowercase letters or digits"),
        ({"bm25_weight": 1.0}, "bm25_weight must be between 0 and 1"),
        ({"retention_hours": 0}, "retention_hours must be positive"),
    ],
)
def test_invalid_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_store(FakeCluster(), **overrides)


def test_misaligned_vectors_are_refused_before_any_request() -> None:
    cluster = FakeCluster()
    with pytest.raises(ValueError, match=r"vectors must have shape \(3, 4\), got \(2, 4\)"):
        make_store(cluster).write(CHUNKS, VECTORS[:2])
    assert cluster.requests == []


@pytest.mark.parametrize(
    ("space_type", "opensearch_score", "local_score"),
    [
        ("cosine", 0.9, 0.8),
        ("cosine", 0.1, -0.8),
        ("innerproduct", 1.25, 0.25),
        ("innerproduct", 0.5, -1.0),
        ("l2", 0.2, 0.2),
    ],
)
def test_knn_scores_are_reported_on_the_local_index_scale(
    space_type: str, opensearch_score: float, local_score: float
) -> None:
    assert similarity(space_type, opensearch_score) == pytest.approx(local_score)


def test_client_without_credentials_is_refused() -> None:
    class NoCredentials:
        def get_credentials(self) -> None:
            return None

    with pytest.raises(CloudBackendError, match="needs AWS credentials: none found"):
        opensearch_client(ENDPOINT, region="us-east-1", session=NoCredentials())  # type: ignore[arg-type]
