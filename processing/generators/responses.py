"""Turn a service's response into a `Generation`, the same way for every backend.

Log-probabilities that were requested but not returned become `logprobs=None` with a warning (the server
may not support them); log-probabilities returned in a broken shape raise, naming the field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from processing.confidence.parsing import LogprobsUnavailable, from_chat_completion
from processing.confidence.reasoning import prompt_opens_reasoning, split_completion
from processing.generators.errors import MalformedResponse
from processing.interfaces import Generation, TokenLogprobs

logger = logging.getLogger(__name__)
# The stop reason every served format uses for "reached the requested token limit": TGI's FinishReason enum
# (docs/openapi.json: length | eos_token | stop_sequence), the OpenAI chat `finish_reason`, and Bedrock Custom
# Model Import's `stop_reason` (stop | length).
STOPPED_AT_LIMIT = "length"


def requested_logprobs(requested: bool, parse: Callable[[], TokenLogprobs], target: str) -> TokenLogprobs | None:
    """Parse log-probabilities only when asked for; None (and a warning) when the server left them out."""
    if not requested:
        return None
    try:
        return parse()
    except LogprobsUnavailable as missing:
        logger.warning("%s returned no token log-probabilities: %s", target, missing)
        return None


def optional_count(container: Mapping[str, Any], key: str, backend: str, where: str = "") -> int | None:
    """A token count the service may omit; present but not a non-negative integer is an error."""
    value = container.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedResponse(backend, where + key, f"expected a token count, got {value!r}")
    return value


def required_text(container: Any, key: str, backend: str, where: str = "") -> str:
    if not isinstance(container, Mapping):
        raise MalformedResponse(backend, where.rstrip(".") or "<response>", "expected a JSON object")
    value = container.get(key)
    if not isinstance(value, str):
        raise MalformedResponse(backend, where + key, f"expected a string, got {type(value).__name__}")
    return value


def strip_echoed_prompt(generated_text: str, prompt: str) -> str:
    """The completion alone: with `return_full_text` on, TGI and DJL LMI return `prompt + completion`."""
    return generated_text.removeprefix(prompt) if prompt else generated_text


def generation_from_completion(
    completion: str,
    *,
    prompt: str,
    finish: Any,
    model_id: str,
    logprobs: TokenLogprobs | None,
    completion_tokens: int | None,
    prompt_tokens: int | None = None,
) -> Generation:
    """A completion-format reply (TGI generate, DJL LMI, Bedrock Custom Model Import) -> Generation: an echoed
    prompt removed, the reasoning split off, and a reply stopped at the limit inside `<think>` flagged."""
    split = split_completion(
        strip_echoed_prompt(completion, prompt),
        prompt_opens_reasoning=prompt_opens_reasoning(prompt),
        hit_token_limit=finish == STOPPED_AT_LIMIT,
    )
    return Generation(
        text=split.answer,
        model_id=model_id,
        reasoning=split.reasoning,
        logprobs=logprobs,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        stop_reason=finish if isinstance(finish, str) else None,
        truncated_in_reasoning=split.cut_in_reasoning,
    )


def generation_from_chat(
    response: Any, *, model_id: str, backend: str, target: str, logprobs_requested: bool
) -> Generation:
    """OpenAI-compatible chat completion -> Generation (OpenAI-compatible servers, TGI messages API).

    Reasoning comes from the server's separate field when it splits it out (`reasoning_content` in vLLM,
    `reasoning` in others), else from the `<think>` span in the content. The server applies the chat template,
    so whether it opened `<think>` in the prompt is unknown here: a reply counts as cut inside its reasoning when
    it stopped at the token limit with an unclosed `<think>` in the content, or with reasoning split out and no
    content.
    """
    if not isinstance(response, Mapping):
        raise MalformedResponse(backend, "<response>", "expected a JSON object")
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise MalformedResponse(backend, "choices", "expected a non-empty list of choices")
    message = choices[0].get("message")
    content = required_text(message, "content", backend, "choices[0].message.")
    separate = next((message[k] for k in ("reasoning_content", "reasoning") if isinstance(message.get(k), str)), None)
    finish = choices[0].get("finish_reason")
    split = split_completion(content, prompt_opens_reasoning=False, hit_token_limit=finish == STOPPED_AT_LIMIT)
    usage = response.get("usage") if isinstance(response.get("usage"), Mapping) else {}
    cut_after_separate = separate is not None and not content.strip() and finish == STOPPED_AT_LIMIT
    return Generation(
        text=split.answer,
        model_id=model_id,
        reasoning=separate.strip() if separate is not None else split.reasoning,
        logprobs=requested_logprobs(logprobs_requested, lambda: from_chat_completion(response), target),
        prompt_tokens=optional_count(usage, "prompt_tokens", backend, "usage."),
        completion_tokens=optional_count(usage, "completion_tokens", backend, "usage."),
        stop_reason=finish if isinstance(finish, str) else None,
        truncated_in_reasoning=split.cut_in_reasoning or cut_after_separate,
    )
