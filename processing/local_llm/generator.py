"""The local default generator: a packaged GGUF model behind a `llama-server` this generator owns.

It speaks the OpenAI-compatible chat API to its server, so the local run exercises the same client, response
parsing and log-probability handling as a vLLM or llama.cpp server elsewhere. `close()` stops the server; the
stage context closes every backend it built, on success and on failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processing.generators.openai_compatible import MAX_TOP_LOGPROBS, OpenAICompatibleGenerator
from processing.interfaces import Generation, Message
from processing.local_llm.models import ResolvedWeights, resolve_weights
from processing.local_llm.server import LlamaServer, ServerSettings, find_binary
from processing.retry import RetryPolicy

BACKEND = "local llama-server"
# The server is on loopback: a failure is a crash or an overload, not a network blip worth long backoff.
LOCAL_RETRY = RetryPolicy(max_attempts=2, initial_delay_s=0.2, max_delay_s=1.0)


class LocalLLMGenerator:
    """Starts its server on construction; `top_logprobs` alternatives per token feed the confidence measures."""

    MAX_ALTERNATIVES = MAX_TOP_LOGPROBS

    def __init__(
        self, model: str, *, settings: ServerSettings | None = None, top_logprobs: int = 10, timeout_s: float = 300.0
    ) -> None:
        self.weights: ResolvedWeights = resolve_weights(model)
        self.model_id = self.weights.model.name
        self.description = f"{BACKEND}: {self.weights.model.note}"
        self._server = LlamaServer(find_binary(), self.weights.path, self.model_id, settings).start()
        try:
            self._client = OpenAICompatibleGenerator(
                self._server.base_url,
                self.model_id,
                api_key=self._server.api_key,
                top_logprobs=top_logprobs,
                timeout_s=timeout_s,
                retry=LOCAL_RETRY,
            )
        except BaseException:  # nobody holds this generator yet, so nobody else could stop its server
            self._server.stop()
            raise

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        return self._client.generate(messages, max_tokens=max_tokens, logprobs=logprobs)

    def params(self) -> dict[str, Any]:
        """MLflow params naming exactly which weights produced the run's numbers."""
        return {
            "generator_weights_file": self.weights.path.name,
            "generator_weights_sha256": self.weights.sha256,
            "generator_weights_package": self.weights.model.package,
            "generator_model_note": self.weights.model.note,
        }

    def close(self) -> None:
        self._server.stop()
