from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import requests
from opensearchpy import AWSV4SignerAuth

from processing.backends.errors import CloudBackendError
from processing.backends.opensearch_store import IngestError, OpenSearchVectorStore, opensearch_client, similarity
from processing.interfaces import Chunk, VectorStore
from tests.processing.cloud.conftest import fake_session
from tests.processing.cloud.fake_opensearch import FakeCluster, connection_for

ENDPOINT = "https://vpc-ragops-dev-abc123.us-east-1.es.amazonaws.com"
CHUNKS = [
    Chunk("c-aspirin", "Aspirin reduces fever.", "doc-1", {"page": "1"}),
    Chunk("c-statin", "Statins lower cholesterol.", "doc-2"),
    Chunk("c-insulin", "Insulin regulates glucose.", "doc-3"),
]
VECTORS = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.6, 0.8]], dtype=np.float32)


def make_store(cluster: FakeCluster, **overrides: Any) -> OpenSearchVectorStore:
    client = opensearch_client(
        ENDPOINT, region="us-east-1", session=fake_session(), connection_class=connection_for(cluster)
    )
    arguments: dict[str, Any] = {
        "index": "pubmed",
        "dimension": 4,
        "space_type": "cosine",
        "m": 16,
        "ef_construction": 200,
        "ef_search": 64,
        "replicas": 2,
        "bulk_initial_backoff": 0,
    }
    return OpenSearchVectorStore(client, **(arguments | overrides))


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


def test_first_ingest_creates_the_exact_index_caps_replicas_on_one_node_and_adds_the_alias() -> None:
    cluster = FakeCluster(data_nodes=1)
    store = make_store(cluster)

    assert store.upsert(CHUNKS, VECTORS) == 3

    assert cluster.calls() == [
        "GET /pubmed-v*/_alias",
        "GET /_cluster/health",
        "PUT /pubmed-v1",
        "POST /_bulk",
        "POST /pubmed-v1/_refresh",
        "POST /pubmed-v1/_count",
        "POST /_aliases",
    ]
    assert cluster.last("PUT", "/pubmed-v1").body == {
        "settings": {
            "index": {
                "knn": True,
                "knn.algo_param.ef_search": 64,
                "number_of_shards": 1,
                "number_of_replicas": 0,
            }
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "chunk_id": {"type": "keyword"},
                "source_id": {"type": "keyword"},
                "text": {"type": "text"},
                "metadata": {"type": "object", "enabled": False},
                "embedding": {
                    "type": "knn_vector",
                    "dimension": 4,
                    "method": {
                        "name": "hnsw",
                        "engine": "faiss",
                        "space_type": "cosinesimil",
                        "parameters": {"m": 16, "ef_construction": 200},
                    },
                },
            },
        },
    }
    assert cluster.last("POST", "/_bulk").body == [
        {"index": {"_index": "pubmed-v1", "_id": "c-aspirin"}},
        {
            "chunk_id": "c-aspirin",
            "source_id": "doc-1",
            "text": "Aspirin reduces fever.",
            "metadata": {"page": "1"},
            "embedding": [1.0, 0.0, 0.0, 0.0],
        },
        {"index": {"_index": "pubmed-v1", "_id": "c-statin"}},
        {
            "chunk_id": "c-statin",
            "source_id": "doc-2",
            "text": "Statins lower cholesterol.",
            "metadata": {},
            "embedding": [0.0, 1.0, 0.0, 0.0],
        },
        {"index": {"_index": "pubmed-v1", "_id": "c-insulin"}},
        {
            "chunk_id": "c-insulin",
            "source_id": "doc-3",
            "text": "Insulin regulates glucose.",
            "metadata": {},
            "embedding": [0.0, 0.0, 0.6000000238418579, 0.800000011920929],
        },
    ]
    assert cluster.last("POST", "/_aliases").body == {"actions": [{"add": {"index": "pubmed-v1", "alias": "pubmed"}}]}
    assert cluster.health()["status"] == "green"
    assert store.count() == 3


@pytest.mark.parametrize(("data_nodes", "requested", "expected"), [(3, 1, 1), (3, 5, 2), (2, 0, 0)])
def test_replicas_never_exceed_data_nodes_minus_one(data_nodes: int, requested: int, expected: int) -> None:
    cluster = FakeCluster(data_nodes=data_nodes)
    make_store(cluster, replicas=requested).upsert(CHUNKS, VECTORS)
    assert cluster.last("PUT", "/pubmed-v1").body["settings"]["index"]["number_of_replicas"] == expected


def test_reingest_swaps_the_alias_atomically_and_keeps_one_previous_version() -> None:
    cluster = FakeCluster()
    store = make_store(cluster)
    store.upsert(CHUNKS, VECTORS)
    store.upsert(CHUNKS[:2], VECTORS[:2])

    assert cluster.last("POST", "/_aliases").body == {
        "actions": [
            {"remove": {"index": "pubmed-v1", "alias": "pubmed"}},
            {"add": {"index": "pubmed-v2", "alias": "pubmed"}},
        ]
    }
    assert sorted(cluster.indices) == ["pubmed-v1", "pubmed-v2"]
    assert store.count() == 2

    store.upsert(CHUNKS, VECTORS)
    assert cluster.calls()[-1] == "DELETE /pubmed-v1"
    assert sorted(cluster.indices) == ["pubmed-v2", "pubmed-v3"]
    assert cluster.alias_targets("pubmed") == ["pubmed-v3"]


def test_duplicate_chunk_ids_are_ingested_once_and_counted_once() -> None:
    cluster = FakeCluster()
    store = make_store(cluster)
    assert store.upsert([*CHUNKS, CHUNKS[0]], np.vstack([VECTORS, VECTORS[:1]])) == 3
    assert len(cluster.last("POST", "/_bulk").body) == 6


def test_partial_bulk_failure_reports_each_item_deletes_the_new_index_and_keeps_the_alias() -> None:
    cluster = FakeCluster()
    store = make_store(cluster)
    store.upsert(CHUNKS, VECTORS)
    cluster.reject_item("c-statin", 400)

    with pytest.raises(IngestError) as raised:
        store.upsert(CHUNKS, VECTORS)

    assert str(raised.value) == (
        "1 of 3 chunks failed to index into pubmed-v2: id=c-statin status=400 mapper_parsing_exception:"
        " failed to index [c-statin]"
    )
    assert len(raised.value.item_errors) == 1
    assert cluster.calls()[-1] == "DELETE /pubmed-v2"
    assert "POST /_aliases" not in cluster.calls()[7:]
    assert sorted(cluster.indices) == ["pubmed-v1"]
    assert cluster.alias_targets("pubmed") == ["pubmed-v1"]


def test_rejected_items_429_are_retried_alone_then_succeed() -> None:
    cluster = FakeCluster()
    cluster.reject_item("c-insulin", 429, 429)

    assert make_store(cluster, bulk_max_retries=3).upsert(CHUNKS, VECTORS) == 3

    bulks = [request.body for request in cluster.requests if request.path == "/_bulk"]
    assert len(bulks) == 3
    assert [line["index"]["_id"] for line in bulks[1][0::2]] == ["c-insulin"]
    assert cluster.alias_targets("pubmed") == ["pubmed-v1"]


def test_items_still_rejected_when_retries_run_out_fail_the_ingest() -> None:
    cluster = FakeCluster()
    cluster.reject_item("c-insulin", 429, 429)
    with pytest.raises(IngestError, match="id=c-insulin status=429 es_rejected_execution_exception"):
        make_store(cluster, bulk_max_retries=1).upsert(CHUNKS, VECTORS)
    assert cluster.indices == {}


def test_whole_request_429_then_success() -> None:
    cluster = FakeCluster()
    cluster.respond_once("POST", "/_bulk", 429, {"error": {"type": "too_many_requests"}, "status": 429})
    assert make_store(cluster).upsert(CHUNKS, VECTORS) == 3
    assert [call for call in cluster.calls() if call == "POST /_bulk"] == ["POST /_bulk"] * 2


def test_bulk_503_is_retried_by_the_client_transport() -> None:
    cluster = FakeCluster()
    cluster.respond_once("POST", "/_bulk", 503, {"error": {"type": "unavailable"}, "status": 503})
    assert make_store(cluster, bulk_max_retries=0).upsert(CHUNKS, VECTORS) == 3
    assert [call for call in cluster.calls() if call == "POST /_bulk"] == ["POST /_bulk"] * 2


def test_count_mismatch_fails_loudly_without_swapping() -> None:
    cluster = FakeCluster()
    store = make_store(cluster)
    store.upsert(CHUNKS, VECTORS)
    cluster.respond_once("POST", "/pubmed-v2/_count", 200, {"count": 2, "_shards": {"total": 1}})

    with pytest.raises(IngestError, match="index pubmed-v2 holds 2 documents after refresh, expected 3 unique chunks"):
        store.upsert(CHUNKS, VECTORS)

    assert cluster.calls()[-2:] == ["POST /pubmed-v2/_count", "DELETE /pubmed-v2"]
    assert cluster.alias_targets("pubmed") == ["pubmed-v1"]
    assert store.count() == 3


def test_failed_cleanup_is_logged_and_the_ingest_error_still_raised(caplog: pytest.LogCaptureFixture) -> None:
    cluster = FakeCluster()
    cluster.reject_item("c-aspirin", 400)
    cluster.respond_once("DELETE", "/pubmed-v1", 403, {"error": {"type": "security_exception"}, "status": 403})
    with caplog.at_level(logging.ERROR), pytest.raises(IngestError):
        make_store(cluster).upsert(CHUNKS, VECTORS)
    assert "could not delete the unpublished index pubmed-v1" in caplog.text


def test_knn_search_sends_the_exact_query_and_returns_hits_best_first() -> None:
    cluster = FakeCluster()
    store = make_store(cluster)
    store.upsert(CHUNKS, VECTORS)

    hits = store.search(np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32), k=2)

    assert cluster.last("POST", "/pubmed/_search").body == {
        "size": 2,
        "_source": {"excludes": ["embedding"]},
        "query": {"knn": {"embedding": {"vector": [0.0, 0.0, 0.0, 1.0], "k": 2}}},
    }
    assert [hit.chunk_id for hit in hits] == ["c-insulin", "c-aspirin"]
    assert hits[0].text == "Insulin regulates glucose."
    assert hits[0].source_id == "doc-3"
    assert hits[0].score == pytest.approx(0.8, rel=1e-6)  # OpenSearch's (1 + cos) / 2, reported as the cosine
    assert hits[1].score == pytest.approx(0.0, abs=1e-6)


def test_hybrid_search_registers_the_normalisation_pipeline_and_uses_it() -> None:
    cluster = FakeCluster()
    store = make_store(cluster, bm25_weight=0.3)
    store.upsert(CHUNKS, VECTORS)
    assert cluster.calls()[-2:] == ["PUT /_search/pipeline/pubmed-hybrid", "POST /_aliases"]
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
    hit = {"_index": "pubmed-v1", "_id": "c-statin", "_score": 0.7, "_source": source}
    cluster.respond_once("POST", "/pubmed/_search", 200, {"took": 4, "hits": {"max_score": 0.7, "hits": [hit]}})

    hits = store.hybrid_search("cholesterol drugs", np.array([0.0, 1.0, 0.0, 0.0]), k=1)

    request = cluster.last("POST", "/pubmed/_search")
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


def test_count_of_a_never_ingested_index_is_zero_and_the_class_is_a_vector_store() -> None:
    store = make_store(FakeCluster())
    assert store.count() == 0
    assert isinstance(store, VectorStore)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"space_type": "dot"}, "space_type must be one of cosine, innerproduct, l2"),
        ({"index": "PubMed"}, "is not a valid OpenSearch index name"),
        ({"bm25_weight": 1.0}, "bm25_weight must be between 0 and 1"),
    ],
)
def test_invalid_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_store(FakeCluster(), **overrides)


def test_misaligned_vectors_are_refused_before_any_request() -> None:
    cluster = FakeCluster()
    with pytest.raises(ValueError, match=r"vectors must have shape \(3, 4\), got \(2, 4\)"):
        make_store(cluster).upsert(CHUNKS, VECTORS[:2])
    assert cluster.requests == []


def test_space_names_map_to_opensearch_space_types() -> None:
    for ours, theirs in [("cosine", "cosinesimil"), ("innerproduct", "innerproduct"), ("l2", "l2")]:
        body = make_store(FakeCluster(), space_type=ours).index_body(replicas=0)
        assert body["mappings"]["properties"]["embedding"]["method"]["space_type"] == theirs


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
