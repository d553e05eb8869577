"""Embeddings from a SageMaker real-time endpoint (JumpStart MiniLM or a Text Embeddings Inference container).

Two request/response shapes exist for the same model family, chosen by `payload_format`:
- "jumpstart": `{"text_inputs": [...], "mode": "embedding"}` -> `{"embedding": [[...], ...]}`, the JumpStart
  sentence-similarity container the platform deploys (huggingface-sentencesimilarity-all-MiniLM-L6-v2). Its
  JSON handler picks the operation by `mode` ("embedding", or the nearest-neighbour modes "nn_corpus" and
  "nn_train_data"), so the embedding mode is always sent explicitly;
- "tei": `{"inputs": [...]}` -> `[[...], ...]` (Hugging Face Text Embeddings Inference).
Rows are checked against the expected dimension and L2-normalised here, so cosine search behaves exactly as
with the local encoder whatever the container does.

InvokeEndpoint takes and returns at most 6 MB (`PAYLOAD_LIMIT_BYTES`, the botocore model's bound on `Body`).
Batches therefore end at `batch_size` texts, at the request bytes their JSON body takes, or at the rows whose
JSON embeddings fit the response, whichever comes first; a single text too large to send fails naming it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from processing.backends.errors import CloudBackendError
from processing.retry import RetryPolicy, call_with_retries, is_transient_aws_error

PayloadFormat = Literal["jumpstart", "tei"]
PAYLOAD_FORMATS: tuple[PayloadFormat, ...] = ("jumpstart", "tei")
PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's request and response Body, real-time endpoints
# A float32 in a JSON response: sign, "0.", up to 17 significant digits, an exponent and a separator.
RESPONSE_BYTES_PER_VALUE = 26


class SageMakerEmbedder:
    """`interfaces.Embedder` over `sagemaker-runtime` `InvokeEndpoint`, batched, with bounded retries."""

    def __init__(
        self,
        client: Any,
        *,
        endpoint_name: str,
        dimension: int,
        payload_format: PayloadFormat = "jumpstart",
        model_id: str | None = None,
        batch_size: int = 32,
        retry: RetryPolicy | None = None,
        payload_limit: int = PAYLOAD_LIMIT_BYTES,
    ) -> None:
        if payload_format not in PAYLOAD_FORMATS:
            raise ValueError(f"payload_format must be one of {', '.join(PAYLOAD_FORMATS)}, got '{payload_format}'")
        if dimension < 1 or batch_size < 1:
            raise ValueError("dimension and batch_size must be positive")
        self._client = client
        self.endpoint_name = endpoint_name
        self.dimension = dimension
        self.payload_format = payload_format
        self.model_id = model_id or f"sagemaker:{endpoint_name}"
        self.payload_limit = payload_limit
        rows_that_fit = (payload_limit - 64) // (dimension * RESPONSE_BYTES_PER_VALUE + 4)
        if rows_that_fit < 1:
            raise ValueError(f"one {dimension}-dimensional embedding does not fit a {payload_limit}-byte response")
        self.batch_size = min(batch_size, rows_that_fit)
        self._retry = retry or RetryPolicy(initial_delay_s=0.5)

    def _request(self, texts: list[str]) -> bytes:
        request = (
            {"text_inputs": texts, "mode": "embedding"} if self.payload_format == "jumpstart" else {"inputs": texts}
        )
        return json.dumps(request).encode()

    def batches(self, texts: Sequence[str]) -> list[bytes]:
        """Request bodies, in order, each within `batch_size` texts and the payload limit."""
        bodies: list[bytes] = []
        batch: list[str] = []
        size = len(self._request([]))
        for position, text in enumerate(texts):
            cost = len(json.dumps(text).encode()) + 2  # the encoded string and its ", " separator
            if batch and (len(batch) == self.batch_size or size + cost > self.payload_limit):
                bodies.append(self._request(batch))
                batch, size = [], len(self._request([]))
            if size + cost > self.payload_limit:
                raise CloudBackendError(
                    f"SageMaker endpoint '{self.endpoint_name}': text {position} ({len(text)} characters) alone"
                    f" exceeds the {self.payload_limit}-byte request limit"
                )
            batch.append(text)
            size += cost
        if batch:
            bodies.append(self._request(batch))
        return bodies

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self._embed_batch(body) for body in self.batches(texts)]
        return np.vstack(rows) if rows else np.empty((0, self.dimension), dtype=np.float32)

    def _embed_batch(self, body: bytes) -> np.ndarray:
        expected_rows = len(json.loads(body)["text_inputs" if self.payload_format == "jumpstart" else "inputs"])
        try:
            response = call_with_retries(
                lambda: self._invoke(body),
                policy=self._retry,
                retryable=is_transient_aws_error,
                target=f"SageMaker endpoint '{self.endpoint_name}' failed",
                error_type=CloudBackendError,
            )
        except (ClientError, BotoCoreError) as error:
            raise CloudBackendError(f"SageMaker endpoint '{self.endpoint_name}' failed: {error}") from error
        return self._parse(response["Body"].read(), expected_rows=expected_rows)

    def _invoke(self, body: bytes) -> dict[str, Any]:
        return self._client.invoke_endpoint(
            EndpointName=self.endpoint_name, ContentType="application/json", Accept="application/json", Body=body
        )

    def _parse(self, raw: bytes, *, expected_rows: int) -> np.ndarray:
        try:
            payload = json.loads(raw)
            rows = payload["embedding"] if self.payload_format == "jumpstart" else payload
            matrix = np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            raise self._malformed(f"{type(error).__name__}: {error}", raw) from error
        if matrix.ndim != 2 or matrix.shape[0] != expected_rows:
            raise self._malformed(f"expected {expected_rows} rows of numbers, got shape {matrix.shape}", raw)
        if matrix.shape[1] != self.dimension:
            raise CloudBackendError(
                f"SageMaker endpoint '{self.endpoint_name}' returned {matrix.shape[1]}-dimensional embeddings,"
                f" expected {self.dimension}"
            )
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if not np.all(np.isfinite(matrix)) or np.any(norms == 0):
            raise self._malformed("an embedding is all zeros or not finite", raw)
        return matrix / norms

    def _malformed(self, reason: str, raw: bytes) -> CloudBackendError:
        excerpt = raw[:200].decode("utf-8", errors="replace")
        return CloudBackendError(
            f"SageMaker endpoint '{self.endpoint_name}' returned a malformed {self.payload_format} response"
            f" ({reason}): {excerpt!r}"
        )
