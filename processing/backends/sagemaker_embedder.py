"""Embeddings from a SageMaker real-time endpoint (JumpStart MiniLM or a Text Embeddings Inference container).

Two request/response shapes exist for the same model family, chosen by `payload_format`:
- "jumpstart": `{"text_inputs": [...], "mode": "embedding"}` -> `{"embedding": [[...], ...]}`, the JumpStart
  sentence-similarity container the platform deploys (huggingface-sentencesimilarity-all-MiniLM-L6-v2). Its
  JSON handler picks the operation by `mode` ("embedding", or the nearest-neighbour modes "nn_corpus" and
  "nn_train_data"), so the embedding mode is always sent explicitly;
- "tei": `{"inputs": [...]}` -> `[[...], ...]` (Hugging Face Text Embeddings Inference).
Rows are checked against the expected dimension and L2-normalised here, so cosine search behaves exactly as
with the local encoder whatever the container does.
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
        self.batch_size = batch_size
        self._retry = retry or RetryPolicy(initial_delay_s=0.5)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        batches = [texts[start : start + self.batch_size] for start in range(0, len(texts), self.batch_size)]
        rows = [self._embed_batch(list(batch)) for batch in batches]
        return np.vstack(rows) if rows else np.empty((0, self.dimension), dtype=np.float32)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        request = (
            {"text_inputs": texts, "mode": "embedding"} if self.payload_format == "jumpstart" else {"inputs": texts}
        )
        body = json.dumps(request).encode()
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
        return self._parse(response["Body"].read(), expected_rows=len(texts))

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
