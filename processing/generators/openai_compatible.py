"""Generator over an OpenAI-compatible chat completions server: vLLM, llama.cpp server, Ollama >= 0.12.11.

Decoding is always greedy (temperature 0): the token log-probabilities then score the answer the model
thinks most likely, and servers that report log-probabilities after temperature scaling cannot skew them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import requests

from processing.generators.errors import GeneratorError, MalformedResponse
from processing.generators.responses import generation_from_chat
from processing.interfaces import Generation, Message
from processing.retry import RetryPolicy, call_with_retries

BACKEND = "openai-compatible"
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_TOP_LOGPROBS = 20  # the OpenAI API's documented upper bound for top_logprobs
DEFAULT_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.5, max_delay_s=8.0)


class TransientHTTPError(Exception):
    """A status worth retrying (rate limited or server-side failure)."""


class OpenAICompatibleGenerator:
    """`base_url` is the API root including its version, e.g. http://127.0.0.1:8000/v1 for vLLM."""

    MAX_ALTERNATIVES = MAX_TOP_LOGPROBS

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        top_logprobs: int = 5,
        timeout_s: float = 120.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        session: requests.Session | None = None,
    ) -> None:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
        if not model:
            raise ValueError("model must name the served model")
        if not 0 <= top_logprobs <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top_logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {top_logprobs}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.model_id = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.top_logprobs = top_logprobs
        self._timeout_s = timeout_s
        self._retry = retry
        self._session = session or requests.Session()
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def request_body(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if logprobs:
            body |= {"logprobs": True, "top_logprobs": self.top_logprobs}
        return body

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        body = self.request_body(messages, max_tokens=max_tokens, logprobs=logprobs)
        response = call_with_retries(
            lambda: self._post(body),
            policy=self._retry,
            retryable=_is_transient,
            target=f"{BACKEND} {self.url}",
            error_type=GeneratorError,
        )
        return generation_from_chat(
            response, model_id=self.model_id, backend=BACKEND, target=self.url, logprobs_requested=logprobs
        )

    def _post(self, body: dict[str, Any]) -> Any:
        response = self._session.post(self.url, json=body, headers=self._headers, timeout=self._timeout_s)
        if response.status_code in TRANSIENT_STATUS:
            raise TransientHTTPError(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            raise GeneratorError(f"{BACKEND} {self.url}: HTTP {response.status_code}: {response.text[:500]}")
        try:
            return response.json()
        except requests.JSONDecodeError:
            raise MalformedResponse(BACKEND, "<body>", f"not JSON: {response.text[:200]!r}") from None


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, TransientHTTPError | requests.ConnectionError | requests.Timeout)
