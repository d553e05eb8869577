"""Against real services, only when the developer configured them; skipped with the reason otherwise."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest
from opensearchpy import OpenSearch

from processing.backends.aws_session import preflight
from processing.backends.bedrock_judge import BedrockConverseTransport
from processing.backends.mlflow_judge import MlflowJudge
from processing.backends.opensearch_store import OpenSearchVectorStore
from processing.backends.sagemaker_embedder import SageMakerEmbedder
from processing.interfaces import Chunk, JudgeInput
from tests.processing.cloud.conftest import STARTUP_AWS_ENVIRONMENT

OPENSEARCH_URL = os.environ.get("OPENSEARCH_URL")
EMBEDDING_ENDPOINT = os.environ.get("RAGOPS_EMBEDDING_ENDPOINT")
HAS_AWS_CREDENTIALS = "AWS_PROFILE" in STARTUP_AWS_ENVIRONMENT or "AWS_ACCESS_KEY_ID" in STARTUP_AWS_ENVIRONMENT

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not OPENSEARCH_URL, reason="set OPENSEARCH_URL (e.g. http://localhost:9200) to run")
def test_write_publish_search_and_a_second_version_on_a_real_cluster() -> None:
    client = OpenSearch(hosts=[OPENSEARCH_URL])
    index = f"ragops-it-{uuid.uuid4().hex[:8]}"
    chunks = [Chunk(f"c{n}", f"text {n}", f"d{n}") for n in range(3)]
    first = OpenSearchVectorStore(client, index=index, version="r1", dimension=4, replicas=1)
    second = OpenSearchVectorStore(client, index=index, version="r2", dimension=4, replicas=1)
    try:
        assert first.write(chunks[:1], np.eye(1, 4, dtype=np.float32)) == 1
        assert first.write(chunks[1:], np.eye(3, 4, dtype=np.float32)[1:]) == 2
        assert first.publish(3) == 3
        assert [hit.chunk_id for hit in first.search(np.array([0, 1, 0, 0], dtype=np.float32), k=1)] == ["c1"]
        assert second.write(chunks[:2], np.eye(2, 4, dtype=np.float32)) == 2
        assert second.publish(2) == 2
        assert sorted(client.indices.get_alias(name=index)) == [f"{index}-r2"]
        assert first.count() == 3
        assert second.count() == 2
        assert (
            client.indices.get_settings(index=f"{index}-r2")[f"{index}-r2"]["settings"]["index"]["refresh_interval"]
            == "1s"
        )
    finally:
        client.indices.delete(index=f"{index}-*", expand_wildcards="all")


@pytest.mark.skipif(
    not (HAS_AWS_CREDENTIALS and EMBEDDING_ENDPOINT),
    reason="set AWS credentials and RAGOPS_EMBEDDING_ENDPOINT (a deployed MiniLM endpoint) to run",
)
@pytest.mark.usefixtures("restored_aws_environment")
def test_sagemaker_embedding_endpoint_returns_normalised_minilm_vectors() -> None:
    context = preflight("embeddings=sagemaker", region=None, required={"embedding_endpoint": EMBEDDING_ENDPOINT})
    embedder = SageMakerEmbedder(
        context.client("sagemaker-runtime"),
        endpoint_name=EMBEDDING_ENDPOINT,
        dimension=384,
        payload_format=os.environ.get("RAGOPS_EMBEDDING_PAYLOAD", "jumpstart"),
    )
    vectors = embedder.embed(["Aspirin reduces fever.", "Statins lower cholesterol."])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


@pytest.mark.skipif(not HAS_AWS_CREDENTIALS, reason="set AWS credentials with Bedrock model access to run")
@pytest.mark.usefixtures("restored_aws_environment")
def test_bedrock_judge_grades_an_obviously_correct_answer_high() -> None:
    context = preflight("judge=bedrock", region=None, required={})
    transport = BedrockConverseTransport(context.client("bedrock-runtime"))
    judge = MlflowJudge(transport, model_id=transport.model_id, provider="bedrock")
    row = JudgeInput("Is water wet?", "Yes, water is wet.", ("Water wets surfaces.",), "Yes.")
    assert judge.score([row])["answer_correctness/v1"].scores[0] >= 4
