"""Generator over a SageMaker endpoint serving DJL LMI (rolling batch), through `invoke_endpoint`.

Request and response follow djl-serving's "LMI handlers Inference API Schema"
(serving/docs/lmi/user_guides/lmi_input_output_schema.md): `{"inputs", "parameters"}` in; one JSON object
`{"generated_text", "details": {"finish_reason", "generated_tokens", "inputs", "tokens"}}` out, or a list of
one such object when the container runs with `OPTION_TGI_COMPAT=true`. A token is `{id, text, log_prob}`: the
chosen token's log-probability only, never alternatives, so `MAX_ALTERNATIVES` is 0 and the decision-label
measure cannot be used with it. An error during generation comes back as `finish_reason: "error"`.
`return_full_text: false` is sent (LMI's documented default) and an echoed prompt is still removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from processing.confidence.parsing import from_lmi_details
from processing.generators.errors import GeneratorError, MalformedResponse
from processing.generators.responses import (
    generation_from_completion,
    optional_count,
    requested_logprobs,
    required_text,
)
from processing.generators.sagemaker_tgi import SageMakerTGIGenerator
from processing.interfaces import Generation, Message

BACKEND = "sagemaker-lmi"


class SageMakerLMIGenerator(SageMakerTGIGenerator):
    """TGI's `generate` call with the same prompt (LMI took that request schema); the response differs."""

    MAX_ALTERNATIVES = 0  # LMI's Token has no alternatives (see the module doc)
    backend = BACKEND

    def __init__(self, endpoint_name: str, **settings: Any) -> None:
        super().__init__(endpoint_name, api="generate", top_n_tokens=0, **settings)

    def request_body(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool) -> dict[str, Any]:
        """Greedy decoding (`do_sample: false`, LMI's default); `details` carries the tokens' log-probabilities."""
        parameters = {"max_new_tokens": max_tokens, "do_sample": False, "details": True, "return_full_text": False}
        return {"inputs": self._prompt_builder(messages), "parameters": parameters}

    def _from_generate(self, response: Any, prompt: str, logprobs: bool, target: str) -> Generation:
        if isinstance(response, list) and len(response) == 1:  # OPTION_TGI_COMPAT wraps the object in a list
            response = response[0]
        if not isinstance(response, Mapping):
            raise MalformedResponse(BACKEND, "<response>", "expected a JSON object (or a list of one)")
        details = response.get("details")
        details = details if isinstance(details, Mapping) else {}
        finish = details.get("finish_reason")
        if finish == "error":
            raise GeneratorError(f"{BACKEND} {self.endpoint_name}: the server reported an error during generation")
        return generation_from_completion(
            required_text(response, "generated_text", BACKEND),
            prompt=prompt,
            finish=finish,
            model_id=self.model_id,
            logprobs=requested_logprobs(logprobs, lambda: from_lmi_details(response), target),
            completion_tokens=optional_count(details, "generated_tokens", BACKEND, "details."),
        )
