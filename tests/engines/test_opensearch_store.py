"""The OpenSearch store's contract on a real OpenSearch 2.19.1 node with the k-NN plugin (lucene engine).

Several writer processes into one version, publish (reconciliation, settings, green, alias), search checked
against the local HNSW store, version expiry, and the failure paths, down to the node going away mid-write.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
from opensearchpy import OpenSearch

from processing.backends.faiss_store import FaissStore, HnswParams
from processing.backends.opensearch_alias import swap_alias
from processing.backends.opensearch_index import IngestError
from processing.interfaces import CountMismatchError
from tests.engines.fault_proxy import FaultProxy
from tests.engines.opensearch_helpers import corpus, store, write_share

HOUR = 3600.0


def aliased(node: OpenSearch, alias: str) -> list[str]:
    return sorted(node.indices.get_alias(name=alias, ignore=404).keys() - {"error", "status"})


def index_settings(node: OpenSearch, name: str) -> dict:
    return node.indices.get_settings(index=name)[name]["settings"]["index"]


def test_two_processes_write_one_version_of_three_shards_and_publish_moves_the_alias(
    opensearch_url: str, node: OpenSearch, index_name: str
) -> None:
    count = 300
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        shares = [(0, 150), (150, count)]
        futures = [pool.submit(write_share, opensearch_url, index_name, 3, a, b, count) for a, b in shares]
        assert [future.result() for future in futures] == [150, 150]
    version = f"{index_name}-r1"
    loading = index_settings(node, version)
    assert (loading["number_of_shards"], loading["number_of_replicas"], loading["refresh_interval"]) == ("3", "0", "-1")
    assert aliased(node, index_name) == []

    assert store(opensearch_url, index_name, shards=3).publish(count) == count

    published = index_settings(node, version)
    assert published["refresh_interval"] == "1s"
    assert published["number_of_replicas"] == "0"  # 1 requested, capped at data nodes - 1 on one node
    assert node.cluster.health(index=version)["status"] == "green"
    assert aliased(node, index_name) == [version]
    assert node.count(index=index_name)["count"] == count
    mapping = node.indices.get_mapping(index=version)[version]["mappings"]["properties"]["embedding"]
    assert mapping["method"] == {
        "name": "hnsw",
        "engine": "lucene",
        "space_type": "cosinesimil",
        "parameters": {"m": 16, "ef_construction": 128},
    }


@pytest.mark.parametrize("space_type", ["cosine", "innerproduct", "l2"])
def test_search_returns_what_the_local_hnsw_store_returns_on_the_same_vectors(
    opensearch_url: str, index_name: str, tmp_path: Path, space_type: str
) -> None:
    chunks, vectors = corpus(200)
    remote = store(opensearch_url, index_name, space_type=space_type)
    remote.write(chunks, vectors)
    remote.publish(len(chunks))
    faiss_space = {"cosine": "cosinesimil", "innerproduct": "innerproduct", "l2": "l2"}[space_type]
    local = FaissStore(tmp_path, version="r1", params=HnswParams(16, 128, 100, faiss_space), embedding_model="m")
    local.write(chunks, vectors)
    local.publish(len(chunks))
    queries = np.random.default_rng(11).normal(size=(10, vectors.shape[1])).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    for query in queries:
        theirs, ours = remote.search(query, k=5), local.search(query, k=5)
        assert [hit.chunk_id for hit in theirs] == [hit.chunk_id for hit in ours]
        np.testing.assert_allclose([h.score for h in theirs], [h.score for h in ours], rtol=1e-4, atol=1e-5)
        assert theirs[0].text == ours[0].text


def test_the_query_carries_ef_search_for_lucene_which_the_node_reads_there(
    opensearch_url: str, node: OpenSearch, index_name: str
) -> None:
    chunks, vectors = corpus(50)
    remote = store(opensearch_url, index_name, ef_search=64)
    remote.write(chunks, vectors)
    remote.publish(50)
    body = {"size": 3, "query": {"knn": {"embedding": {"vector": vectors[0].tolist(), "k": 3}}}}
    body["query"]["knn"]["embedding"]["method_parameters"] = {"ef_search": 64}
    assert node.search(index=f"{index_name}-r1", body=body)["hits"]["hits"][0]["_id"] == "c0000"
    assert remote.search(vectors[0], k=3)[0].chunk_id == "c0000"


def test_a_count_mismatch_fails_naming_both_numbers_deletes_the_version_and_keeps_the_alias(
    opensearch_url: str, node: OpenSearch, index_name: str
) -> None:
    chunks, vectors = corpus(40)
    first = store(opensearch_url, index_name, "r1")
    first.write(chunks, vectors)
    first.publish(40)
    short = store(opensearch_url, index_name, "r2")
    short.write(chunks[:30], vectors[:30])  # a writer whose share never arrived

    with pytest.raises(CountMismatchError, match=f"index {index_name}-r2 holds 30 chunks, expected 40"):
        short.publish(40)

    assert not node.indices.exists(index=f"{index_name}-r2")
    assert aliased(node, index_name) == [f"{index_name}-r1"]


def test_publishing_a_version_never_written_fails_with_zero_and_creates_nothing(
    opensearch_url: str, node: OpenSearch, index_name: str
) -> None:
    with pytest.raises(CountMismatchError, match=rf"index {index_name}-r1 \(never written\) holds 0 chunks"):
        store(opensearch_url, index_name).publish(3)
    assert not node.indices.exists(index=f"{index_name}-r1")
    assert aliased(node, index_name) == []


def test_the_node_going_away_mid_write_fails_clearly_and_publishes_nothing(
    opensearch_url: str, node: OpenSearch, index_name: str
) -> None:
    chunks, vectors = corpus(200)
    first = store(opensearch_url, index_name, "r1")
    first.write(chunks[:10], vectors[:10])
    first.publish(10)
    proxy = FaultProxy(opensearch_url)
    cut = store(proxy.url, index_name, "r2", bulk_chunk_size=20, bulk_max_retries=0)
    proxy.cut_after(3, b"POST /_bulk")  # the third bulk request reaches the node, nothing after it

    with pytest.raises(IngestError, match=f"chunks failed to index into {index_name}-r2: id=c"):
        cut.write(chunks, vectors)
    with pytest.raises(Exception, match="Connection"):
        cut.publish(len(chunks))

    assert aliased(node, index_name) == [f"{index_name}-r1"]
    assert node.count(index=index_name)["count"] == 10


def test_a_lost_swap_response_is_retried_by_the_client_and_the_version_survives(
    opensearch_url: str, node: OpenSearch, index_name: str
) -> None:
    chunks, vectors = corpus(20)
    store(opensearch_url, index_name, "r1").write(chunks, vectors)
    store(opensearch_url, index_name, "r1").publish(20)
    proxy = FaultProxy(opensearch_url)
    second = store(proxy.url, index_name, "r2")
    second.write(chunks, vectors)
    proxy.drop_next_response(b"POST /_aliases")  # the swap is applied; its answer never arrives

    assert second.publish(20) == 20  # the transport retries the same swap, which must succeed again

    assert sum(head.startswith(b"POST /_aliases") for head in proxy.forwarded) == 2
    assert aliased(node, index_name) == [f"{index_name}-r2"]
    assert node.indices.exists(index=f"{index_name}-r1")
    proxy.close()


def test_a_swap_succeeds_when_the_previous_version_vanished_just_before_it_and_can_be_repeated(
    opensearch_url: str, node: OpenSearch, index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks, vectors = corpus(20)
    first, second = store(opensearch_url, index_name, "r1"), store(opensearch_url, index_name, "r2")
    first.write(chunks, vectors)
    first.publish(20)
    second.write(chunks, vectors)
    send = second._client.indices.update_aliases

    def expired_first(**kwargs: object) -> object:  # a concurrent publish's expiry deletes r1 at this moment
        node.indices.delete(index=f"{index_name}-r1")
        return send(**kwargs)

    monkeypatch.setattr(second._client.indices, "update_aliases", expired_first)

    assert second.publish(20) == 20

    assert aliased(node, index_name) == [f"{index_name}-r2"]
    swap_alias(node, index_name, f"{index_name}-r2")  # a late client retry of the same swap
    assert aliased(node, index_name) == [f"{index_name}-r2"]


def test_two_publishes_at_once_leave_the_alias_on_one_version_and_both_versions_intact(
    opensearch_url: str, node: OpenSearch, index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks, vectors = corpus(20)
    stores = [store(opensearch_url, index_name, version) for version in ("r0", "r1", "r2")]
    for each in stores:
        each.write(chunks, vectors)
    stores[0].publish(20)
    together = threading.Barrier(2)
    for each in stores[1:]:  # both count (and from there on run) at the same moment
        count = each._client.count
        monkeypatch.setattr(each._client, "count", lambda count=count, **kwargs: (together.wait(), count(**kwargs))[1])

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda each: each.publish(20), stores[1:])) == [20, 20]

    assert len(aliased(node, index_name)) == 1
    assert node.indices.exists(index=f"{index_name}-r1")
    assert node.indices.exists(index=f"{index_name}-r2")


def test_publish_expires_this_names_old_versions_but_never_the_aliased_one(
    opensearch_url: str, node: OpenSearch, index_name: str
) -> None:
    chunks, vectors = corpus(5)
    for version in ("r1", "r2"):
        each = store(opensearch_url, index_name, version, retention_hours=1)
        each.write(chunks, vectors)
        each.publish(5)
    legacy = f"{index_name}-k3x9q2m7w1p0-v1"  # a per-execution index from before versions
    node.indices.create(index=legacy)
    node.indices.create(index=f"{index_name}x-r1")  # another alias's version: never ours to delete
    later = time.time() + 2 * HOUR
    assert sorted(node.indices.get(index=f"{index_name}-*")) == [legacy, f"{index_name}-r1", f"{index_name}-r2"]

    aliased_old = store(opensearch_url, index_name, "r2", retention_hours=1, clock=lambda: later)
    aliased_old.publish(5)  # published again two hours on (a retried step): it is the alias target, so it stays
    assert sorted(node.indices.get(index=f"{index_name}-*")) == [f"{index_name}-r2"]
    assert node.indices.exists(index=f"{index_name}x-r1")

    third = store(opensearch_url, index_name, "r3", retention_hours=1, clock=lambda: later)
    third.write(chunks, vectors)
    third.publish(5)
    assert sorted(node.indices.get(index=f"{index_name}-*")) == [f"{index_name}-r3"]
    assert aliased(node, index_name) == [f"{index_name}-r3"]
