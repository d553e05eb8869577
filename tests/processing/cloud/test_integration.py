"""Against real AWS services, only when the developer configured them; skipped with the reason otherwise.
The OpenSearch store runs against a real node in tests/engines."""

from __future__ import annotations

import os

import numpy as np
import pytest

from processing.backends.aws_session import preflight
from processing.backends.bedrock_judge import BedrockConverseTransport
from processing.backends.mlflow_judge import MlflowJudge
from processing.backends.sagemaker_embedder import SageMakerEmbedder
from processing.interfaces import JudgeInput
from tests.processing.cloud.conftest import STARTUP_AWS_ENVIRONMENT

EMBEDDING_ENDPOINT = os.environ.get("RAGOPS_EMBEDDING_ENDPOINT")
HAS_AWS_CREDENTIALS = "AWS_PROFILE" in STARTUP_AWS_ENVIRONMENT or "AWS_ACCESS_KEY_ID" in STARTUP_AWS_ENVIRONMENT

pytestmark = pytest.mark.integration


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
