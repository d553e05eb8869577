"""Generator over a SageMaker endpoint serving Hugging Face TGI (the JumpStart DeepSeek-R1 distill container).

Two request formats, both through `invoke_endpoint` (TGI's `/invocations` takes either, router/src/sagemaker.rs):
- "generate" (default): our DeepSeek-R1 chat template renders the prompt; `details`/`decoder_input_details`
  return every generated token with its log-probability, `top_n_tokens` the alternatives, and the prefill
  gives the prompt's token count and log-probabilities. `return_full_text: false` is always sent: when the
  request leaves it unset, TGI 3.x (router/src/server.rs, `compat_generate`) falls back to a default that is
  `true` for a model without a Hub pipeline tag, and a model loaded from a local folder has none; the JumpStart
  image starts TGI with `MODEL_ID=$HF_MODEL_ID=/opt/ml/model` (sagemaker-entrypoint.sh). TGI then prepends the
  request's `inputs` verbatim to `generated_text` (`prompt + output_text`), while `details.tokens` hold the
  generated tokens only and the prompt's tokens sit in `details.prefill`. A server that echoes anyway (an
  older image, a proxy) has that exact prefix removed, so the answer is never prompt plus answer.
- "messages": TGI's OpenAI-compatible chat API; the server applies the model's own template and returns
  `logprobs.content` (no prompt log-probabilities).
Decoding is greedy (`do_sample: false`, or `temperature: 0`, which TGI maps to greedy): TGI reports
log-probabilities after temperature and top-p warping, so only greedy decoding scores the model's own
distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from processing.confidence.parsing import from_tgi_details
from processing.generators.aws import invoke_endpoint_json, runtime_client
from processing.generators.chat_template import PromptBuilder, deepseek_r1_server_prompt
from processing.generators.errors import MalformedResponse
from processing.generators.responses import (
    generation_from_chat,
    generation_from_completion,
    optional_count,
    requested_logprobs,
    required_text,
)
from processing.interfaces import Generation, Message
from processing.retry import RetryPolicy

BACKEND = "sagemaker-tgi"
MAX_TOP_N_TOKENS = 5  # TGI's default --max-top-n-tokens (launcher/src/main.rs); the JumpStart model leaves it
DEFAULT_RETRY = RetryPolicy(max_attempts=5, initial_delay_s=1.0, max_delay_s=20.0)


class SageMakerTGIGenerator:
    """`top_n_tokens` alternatives per generated token (0: only the chosen token's log-probability)."""

    MAX_ALTERNATIVES = MAX_TOP_N_TOKENS
    backend = BACKEND

    def __init__(
        self,
        endpoint_name: str,
        *,
        model_id: str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        api: Literal["generate", "messages"] = "generate",
        top_n_tokens: int = MAX_TOP_N_TOKENS,
        prompt_builder: PromptBuilder = deepseek_r1_server_prompt,
        region_name: str | None = None,
        client: Any = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        if not endpoint_name:
            raise ValueError("endpoint_name must name the SageMaker endpoint")
        if api not in ("generate", "messages"):
            raise ValueError(f"api must be 'generate' or 'messages', got {api!r}")
        if not 0 <= top_n_tokens <= MAX_TOP_N_TOKENS:
            raise ValueError(f"top_n_tokens must be in [0, {MAX_TOP_N_TOKENS}] (TGI's limit), got {top_n_tokens}")
        self.model_id = model_id
        self.endpoint_name = endpoint_name
        self.api = api
        self.top_n_tokens = top_n_tokens
        self._prompt_builder = prompt_builder
        self._client = client if client is not None else runtime_client("sagemaker-runtime", region_name)
        self._retry = retry

    def request_body(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool) -> dict[str, Any]:
        if self.api == "messages":
            body: dict[str, Any] = {
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            if logprobs:
                body |= {"logprobs": True} | ({"top_logprobs": self.top_n_tokens} if self.top_n_tokens else {})
            return body
        parameters: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "do_sample": False,
            "details": True,
            "return_full_text": False,
        }
        if logprobs:
            parameters |= {"decoder_input_details": True}
            parameters |= {"top_n_tokens": self.top_n_tokens} if self.top_n_tokens else {}
        return {"inputs": self._prompt_builder(messages), "parameters": parameters}

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        body = self.request_body(messages, max_tokens=max_tokens, logprobs=logprobs)
        response = invoke_endpoint_json(
            self._client, self.endpoint_name, body, backend=self.backend, policy=self._retry
        )
        target = f"{self.backend} endpoint {self.endpoint_name}"
        if self.api == "messages":
            return generation_from_chat(
                response, model_id=self.model_id, backend=BACKEND, target=target, logprobs_requested=logprobs
            )
        return self._from_generate(response, body["inputs"], logprobs, target)

    def _from_generate(self, response: Any, prompt: str, logprobs: bool, target: str) -> Generation:
        if isinstance(response, Mapping) and "generated_text" in response:
            # DJL LMI's rolling-batch response is this object form (djl-serving, lmi_input_output_schema.md),
            # with differently named token fields: refused by name rather than half parsed.
            raise MalformedResponse(
                BACKEND,
                "<response>",
                "a single JSON object, not TGI's list of one generation: the endpoint looks like DJL LMI; "
                "select it with generator=sagemaker-lmi",
            )
        if not isinstance(response, list) or len(response) != 1:
            raise MalformedResponse(BACKEND, "<response>", "expected a list with one generation")
        details = response[0].get("details")
        details = details if isinstance(details, Mapping) else {}
        prefill = details.get("prefill")
        return generation_from_completion(
            required_text(response[0], "generated_text", BACKEND, "[0]."),
            prompt=prompt,
            finish=details.get("finish_reason"),
            model_id=self.model_id,
            logprobs=requested_logprobs(logprobs, lambda: from_tgi_details(response), target),
            prompt_tokens=len(prefill) if isinstance(prefill, list) and prefill else None,
            completion_tokens=optional_count(details, "generated_tokens", BACKEND, "[0].details."),
        )
