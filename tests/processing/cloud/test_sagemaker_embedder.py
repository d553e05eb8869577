from __future__ import annotations

import json
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.stub import Stubber

from processing.backends.errors import CloudBackendError
from processing.backends.sagemaker_embedder import PAYLOAD_LIMIT_BYTES as LIMIT
from processing.backends.sagemaker_embedder import SageMakerEmbedder
from processing.interfaces import Embedder
from processing.retry import RetryPolicy
from tests.processing.cloud.conftest import fake_session, streaming_body

ENDPOINT = "ragops-dev-embedding"
# The sentence-similarity container selects the operation by "mode"; embeddings must be asked for explicitly.
JUMPSTART_A = b'{"text_inputs": ["a"], "mode": "embedding"}'


@pytest.fixture
def runtime() -> Any:
    return fake_session().client("sagemaker-runtime")


def expect_invoke(stubber: Stubber, body: bytes, response: Any) -> None:
    stubber.add_response(
        "invoke_endpoint",
        {"Body": streaming_body(response), "ContentType": "application/json"},
        {"EndpointName": ENDPOINT, "ContentType": "application/json", "Accept": "application/json", "Body": body},
    )


def model_error(stubber: Stubber, original_status: int) -> None:
    """The container answered `original_status`; SageMaker reports it as a 424 ModelError."""
    message = f"Received error ({original_status}) from primary"
    stubber.add_client_error(
        "invoke_endpoint", "ModelError", message, 424, modeled_fields={"OriginalStatusCode": original_status}
    )


def embedder(client: Any, retry: RetryPolicy, **overrides: Any) -> SageMakerEmbedder:
    arguments = {"endpoint_name": ENDPOINT, "dimension": 2, "payload_format": "jumpstart", "batch_size": 2}
    return SageMakerEmbedder(client, retry=retry, **(arguments | overrides))


def test_jumpstart_payload_is_batched_and_rows_are_l2_normalised(runtime: Any, retry: RetryPolicy) -> None:
    with Stubber(runtime) as stubber:
        expect_invoke(
            stubber, b'{"text_inputs": ["a", "b"], "mode": "embedding"}', {"embedding": [[3.0, 4.0], [0.0, 2.0]]}
        )
        expect_invoke(stubber, b'{"text_inputs": ["c"], "mode": "embedding"}', {"embedding": [[-1.0, 0.0]]})
        vectors = embedder(runtime, retry).embed(["a", "b", "c"])
        stubber.assert_no_pending_responses()
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]], rtol=1e-6)


def test_tei_payload_and_response_shape(runtime: Any, retry: RetryPolicy) -> None:
    with Stubber(runtime) as stubber:
        expect_invoke(stubber, b'{"inputs": ["x", "y"]}', [[0.0, 5.0], [2.0, 0.0]])
        vectors = embedder(runtime, retry, payload_format="tei").embed(["x", "y"])
        stubber.assert_no_pending_responses()
    np.testing.assert_allclose(vectors, [[0.0, 1.0], [1.0, 0.0]])


def test_throttling_and_container_5xx_are_retried_with_jittered_backoff(
    runtime: Any, retry: RetryPolicy, sleeps: list[float]
) -> None:
    with Stubber(runtime) as stubber:
        stubber.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 429)
        model_error(stubber, 503)
        expect_invoke(stubber, JUMPSTART_A, {"embedding": [[1.0, 0.0]]})
        vectors = embedder(runtime, retry).embed(["a"])
        stubber.assert_no_pending_responses()
    np.testing.assert_allclose(vectors, [[1.0, 0.0]])
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


def test_retries_are_bounded(runtime: Any, retry: RetryPolicy, sleeps: list[float]) -> None:
    with Stubber(runtime) as stubber:
        for _ in range(retry.max_attempts):
            stubber.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 429)
        with pytest.raises(CloudBackendError, match=f"SageMaker endpoint '{ENDPOINT}' failed: .*ThrottlingException"):
            embedder(runtime, retry).embed(["a"])
        stubber.assert_no_pending_responses()
    assert len(sleeps) == retry.max_attempts - 1


def test_container_client_errors_are_not_retried(runtime: Any, retry: RetryPolicy, sleeps: list[float]) -> None:
    with Stubber(runtime) as stubber:
        model_error(stubber, 400)
        with pytest.raises(CloudBackendError, match="ModelError"):
            embedder(runtime, retry).embed(["a"])
    assert sleeps == []


def test_dimension_mismatch_names_expected_and_actual(runtime: Any, retry: RetryPolicy) -> None:
    with Stubber(runtime) as stubber:
        expect_invoke(stubber, JUMPSTART_A, {"embedding": [[1.0, 0.0, 0.0]]})
        with pytest.raises(CloudBackendError, match="returned 3-dimensional embeddings, expected 2"):
            embedder(runtime, retry).embed(["a"])


@pytest.mark.parametrize(
    ("payload_format", "body", "response", "reason"),
    [
        ("jumpstart", JUMPSTART_A, b"<html>502 Bad Gateway</html>", "JSONDecodeError"),
        ("jumpstart", JUMPSTART_A, [[1.0, 0.0]], "TypeError"),  # TEI shape to a JumpStart request
        ("jumpstart", JUMPSTART_A, {"embeddings": [[1.0, 0.0]]}, "KeyError"),
        ("tei", b'{"inputs": ["a"]}', [[1.0, 0.0], [0.0, 1.0]], "expected 1 rows"),
        ("tei", b'{"inputs": ["a"]}', [[1.0, "x"]], "ValueError"),
        ("tei", b'{"inputs": ["a"]}', [[0.0, 0.0]], "all zeros"),
    ],
)
def test_malformed_responses_name_the_endpoint(
    runtime: Any, retry: RetryPolicy, payload_format: str, body: bytes, response: Any, reason: str
) -> None:
    with Stubber(runtime) as stubber:
        expect_invoke(stubber, body, response)
        with pytest.raises(CloudBackendError, match=f"endpoint '{ENDPOINT}' returned a malformed .*{reason}"):
            embedder(runtime, retry, payload_format=payload_format).embed(["a"])


def test_empty_input_makes_no_call_and_the_class_is_an_embedder(runtime: Any, retry: RetryPolicy) -> None:
    with Stubber(runtime):
        store = embedder(runtime, retry)
        assert store.embed([]).shape == (0, 2)
    assert isinstance(store, Embedder)
    assert store.model_id == f"sagemaker:{ENDPOINT}"


def test_unknown_payload_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="payload_format must be one of jumpstart, tei"):
        SageMakerEmbedder(boto3, endpoint_name=ENDPOINT, dimension=2, payload_format="openai")  # type: ignore[arg-type]


def test_batches_stay_under_the_6_mb_request_limit(runtime: Any, retry: RetryPolicy) -> None:
    texts = [letter * 2_000_000 for letter in "abcde"]  # 2 MB each: three fit in 6 MiB, a fourth does not
    model = embedder(runtime, retry, batch_size=64)
    bodies = model.batches(texts)
    assert [len(json.loads(body)["text_inputs"]) for body in bodies] == [3, 2]
    assert max(len(body) for body in bodies) <= LIMIT
    assert [t for body in bodies for t in json.loads(body)["text_inputs"]] == texts
    with Stubber(runtime) as stubber:
        for body in bodies:
            rows = len(json.loads(body)["text_inputs"])
            expect_invoke(stubber, body, {"embedding": [[1.0, 0.0]] * rows})
        assert model.embed(texts).shape == (5, 2)
        stubber.assert_no_pending_responses()


def test_batches_also_stay_under_the_limit_for_the_response() -> None:
    wide = SageMakerEmbedder(object(), endpoint_name=ENDPOINT, dimension=4096, batch_size=1024)
    assert wide.batch_size * 4096 * 26 < LIMIT
    assert wide.batch_size == (LIMIT - 64) // (4096 * 26 + 4)
    assert SageMakerEmbedder(object(), endpoint_name=ENDPOINT, dimension=384, batch_size=64).batch_size == 64


def test_a_text_too_large_for_one_request_is_named(runtime: Any, retry: RetryPolicy) -> None:
    with pytest.raises(CloudBackendError, match=r"text 1 \(6300000 characters\) alone exceeds the 6291456-byte"):
        embedder(runtime, retry).batches(["fine", "x" * 6_300_000])
