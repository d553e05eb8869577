"""Generator over a model imported with Amazon Bedrock Custom Model Import (completion format, `InvokeModel`).

The request asks for `return_logprobs`; the response carries one `{"<token id>": logprob}` per generated token
and, when the service returns them, the prompt's log-probabilities. That is the chosen token's log-probability
only, never top-k alternatives (Amazon Bedrock User Guide, "Advanced API features for imported models", log
probabilities: docs.aws.amazon.com/bedrock/latest/userguide/custom-model-import-advanced-features.html; the
completion format with `return_logprobs` is shown in the AWS Machine Learning Blog post "Unlock model insights
with log probability support for Amazon Bedrock Custom Model Import"), so `MAX_ALTERNATIVES` is 0 and the run
config refuses a confidence measure that needs alternatives with this generator. Token ids are decoded with the imported
model's `tokenizer.json` when a local path is given (never downloaded), else reported as `<id:N>`.
Temperature is 0 (greedy), so the log-probabilities score the model's most likely answer. A cold imported
model answers ModelNotReadyException while it loads: retried with backoff like throttling, within a bound.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from processing.confidence.parsing import from_bedrock_completion, load_tokenizer
from processing.generators.aws import invoke_json, runtime_client
from processing.generators.chat_template import PromptBuilder, deepseek_r1_server_prompt
from processing.generators.errors import MalformedResponse
from processing.generators.responses import (
    generation_from_completion,
    optional_count,
    requested_logprobs,
    required_text,
)
from processing.interfaces import Generation, Message
from processing.retry import RetryPolicy

BACKEND = "bedrock-cmi"
IMPORTED_MODEL_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]+):\d{12}:imported-model/[A-Za-z0-9]+$")
# A cold start can take minutes: up to 8 attempts, waits capped at 30 s.
DEFAULT_RETRY = RetryPolicy(max_attempts=8, initial_delay_s=2.0, max_delay_s=30.0)


class BedrockCustomModelGenerator:
    MAX_ALTERNATIVES = 0  # `return_logprobs` gives the chosen token's log-probability only (see the module doc)

    def __init__(
        self,
        model_arn: str,
        *,
        tokenizer_path: str | Path | None = None,
        prompt_builder: PromptBuilder = deepseek_r1_server_prompt,
        region_name: str | None = None,
        client: Any = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        match = IMPORTED_MODEL_ARN.match(model_arn)
        if match is None:
            raise ValueError(
                f"model_arn must be an imported model ARN (arn:aws:bedrock:<region>:<account>:imported-model/<id>), "
                f"got {model_arn!r}"
            )
        self._client = client if client is not None else runtime_client("bedrock-runtime", region_name)
        client_region = self._client.meta.region_name
        if client_region != match["region"]:
            raise ValueError(f"model_arn is in {match['region']} but the bedrock-runtime client is in {client_region}")
        self.model_id = model_arn
        self._tokenizer = load_tokenizer(tokenizer_path) if tokenizer_path is not None else None
        self._prompt_builder = prompt_builder
        self._retry = retry

    def request_body(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": self._prompt_builder(messages), "max_gen_len": max_tokens, "temperature": 0}
        return body | ({"return_logprobs": True} if logprobs else {})

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        body = self.request_body(messages, max_tokens=max_tokens, logprobs=logprobs)
        response = invoke_json(
            lambda: self._client.invoke_model(
                modelId=self.model_id, contentType="application/json", accept="application/json", body=json.dumps(body)
            )["body"],
            backend=BACKEND,
            target=self.model_id,
            policy=self._retry,
        )
        if not isinstance(response, Mapping):
            raise MalformedResponse(BACKEND, "<response>", "expected a JSON object")
        return generation_from_completion(
            required_text(response, "generation", BACKEND),
            prompt=body["prompt"],
            finish=response.get("stop_reason"),
            model_id=self.model_id,
            logprobs=requested_logprobs(
                logprobs, lambda: from_bedrock_completion(response, self._tokenizer), f"{BACKEND} {self.model_id}"
            ),
            prompt_tokens=optional_count(response, "prompt_token_count", BACKEND),
            completion_tokens=optional_count(response, "generation_token_count", BACKEND),
        )
