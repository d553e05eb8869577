"""The real OpenSearch node these tests run against: `RAGOPS_OPENSEARCH_URL`, set by `.ci/run` (and by hand after
`make opensearch`). Without it the tests skip, except under CI (`CI=true`), where a missing or unreachable
node fails them: CI must never pass without having run them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

URL_VARIABLE = "RAGOPS_OPENSEARCH_URL"


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    url = os.environ.get(URL_VARIABLE, "")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {URL_VARIABLE} is not set: .ci/run starts the node (scripts/opensearch)")
        pytest.skip(f"set {URL_VARIABLE} (make opensearch prints it) to run against a real node")
    health = OpenSearch(hosts=[url], timeout=30).cluster.health()
    assert health["status"] in ("green", "yellow"), health
    return url


@pytest.fixture(scope="session")
def node(opensearch_url: str) -> OpenSearch:
    """A plain client of the node, for looking at what the store left there."""
    return OpenSearch(hosts=[opensearch_url], timeout=60)


@pytest.fixture
def index_name(node: OpenSearch) -> Iterator[str]:
    """An alias name of this test's own; its versions and pipeline are deleted afterwards."""
    name = f"it{uuid.uuid4().hex[:10]}"
    yield name
    node.indices.delete(index=f"{name}-*,{name}x-*", expand_wildcards="all", ignore_unavailable=True)
