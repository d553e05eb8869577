"""The Bedrock judge transport: one `bedrock-runtime` `Converse` call per grading prompt MLflow's judge metrics
send (`backends/judge_endpoint.py`), temperature 0, behind the one retry policy, on a client built by the run
(botocore's own retries off), so the request and its retries are what the Stubber tests assert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from processing.backends.errors import CloudBackendError
from processing.interfaces import Message
from processing.retry import RetryPolicy, call_with_retries, is_transient_aws_error

DEFAULT_JUDGE_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
JUDGE_RETRY = RetryPolicy(initial_delay_s=0.5)


class BedrockConverseTransport:
    """`judge_endpoint.Transport` over Converse; system messages go into Converse's `system` field."""

    def __init__(
        self,
        client: Any,
        *,
        model_id: str = DEFAULT_JUDGE_MODEL,
        temperature: float = 0.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = client
        self.model_id = model_id
        self.temperature = temperature
        self._retry = retry or JUDGE_RETRY

    def __call__(self, messages: Sequence[Message], max_tokens: int) -> str:
        system = [{"text": m.content} for m in messages if m.role == "system"]
        request: dict[str, Any] = {
            "modelId": self.model_id,
            "messages": [{"role": m.role, "content": [{"text": m.content}]} for m in messages if m.role != "system"],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": self.temperature},
        }
        if system:
            request["system"] = system
        target = f"Bedrock judge {self.model_id}"
        try:
            response = call_with_retries(
                lambda: self._client.converse(**request),
                policy=self._retry,
                retryable=is_transient_aws_error,
                target=target,
                error_type=CloudBackendError,
            )
        except (ClientError, BotoCoreError) as error:
            raise CloudBackendError(f"{target}: {error}") from error
        content = response.get("output", {}).get("message", {}).get("content", [])
        return "".join(block.get("text", "") for block in content)
