"""Build one `TokenLogprobs` from each service's response format.

Every generator backend reports token log-probabilities differently; the measures only ever see
`processing.interfaces.TokenLogprobs`. A response that carries no log-probabilities raises
`LogprobsUnavailable`; one that carries them in an unexpected shape raises `MalformedLogprobs`. Both name
the field, so a missing signal is never mistaken for a confident (all-zero) one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream

from processing.interfaces import TokenLogprobs

UNDECODED_TOKEN_PREFIX = "<id:"  # noqa: S105 - a rendering prefix, not a secret


class LogprobsError(ValueError):
    """Base class: the response cannot give token log-probabilities."""


class LogprobsUnavailable(LogprobsError):
    """The response has no log-probabilities at `field` (not requested, or not supported by the server)."""

    def __init__(self, field: str, detail: str = "") -> None:
        self.field = field
        super().__init__(f"log-probabilities unavailable: no `{field}` in the response{detail and ': ' + detail}")


class MalformedLogprobs(LogprobsError):
    """Log-probabilities are present at `field` but not in the documented shape."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(f"malformed log-probabilities at `{field}`: {detail}")


def undecoded_token(token_id: int) -> str:
    """How a token is rendered when only its id is known (no local tokenizer)."""
    return f"{UNDECODED_TOKEN_PREFIX}{token_id}>"


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a `tokenizer.json` from disk; never from a hub, so runs stay offline and reproducible."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path} (expected the model's tokenizer.json)")
    return Tokenizer.from_file(str(path))


def from_bedrock_completion(response: Mapping[str, Any], tokenizer: Tokenizer | None = None) -> TokenLogprobs:
    """Bedrock Custom Model Import completion format (`return_logprobs: true`).

    `logprobs` holds one single-key dict `{"<token id>": logprob}` per generated token (top-1 only, so no
    alternatives); `prompt_logprobs`, when present, one entry per prompt token with the first `null`. Token
    text comes from the local tokenizer when given, else tokens are rendered `<id:N>`.
    """
    entries = _required_list(response, "logprobs")
    pairs = [_single_id_logprob(entry, f"logprobs[{i}]") for i, entry in enumerate(entries)]
    ids = [token_id for token_id, _ in pairs]
    return TokenLogprobs(
        tokens=tuple(_decode_ids(ids, tokenizer)),
        logprobs=tuple(logprob for _, logprob in pairs),
        token_ids=tuple(ids),
        prompt_logprobs=_bedrock_prompt_logprobs(response.get("prompt_logprobs")),
    )


def from_chat_completion(response: Mapping[str, Any]) -> TokenLogprobs:
    """OpenAI-compatible chat format, shared by vLLM, llama.cpp, Ollama, Bedrock chat and TGI's messages API.

    Reads `choices[0].logprobs.content[i].{token, logprob, top_logprobs}`, and the token `id` where the server
    adds it (llama.cpp does; the OpenAI format does not, and vLLM only on request).
    """
    choices = _required_list(response, "choices")
    if not choices:
        raise MalformedLogprobs("choices", "empty list")
    choice = _mapping(choices[0], "choices[0]")
    logprobs = choice.get("logprobs")
    if logprobs is None:
        raise LogprobsUnavailable("choices[0].logprobs", "request it with logprobs=true")
    content = _required_list(_mapping(logprobs, "choices[0].logprobs"), "content", prefix="choices[0].logprobs.")
    tokens: list[str] = []
    ids: list[int | None] = []
    values: list[float] = []
    alternatives: list[tuple[tuple[str, float], ...]] = []
    for i, raw in enumerate(content):
        where = f"choices[0].logprobs.content[{i}]"
        entry = _mapping(raw, where)
        tokens.append(_string(entry.get("token"), f"{where}.token"))
        ids.append(None if entry.get("id") is None else _token_id(entry["id"], f"{where}.id"))
        values.append(_logprob(entry.get("logprob"), f"{where}.logprob"))
        top = entry.get("top_logprobs")
        alternatives.append(() if top is None else _alternatives(top, f"{where}.top_logprobs", "token"))
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(values),
        token_ids=tuple(ids),
        alternatives=tuple(alternatives) if any(alternatives) else None,
    )


def from_tgi_details(response: Any) -> TokenLogprobs:
    """TGI `generate` format with `details` (and `decoder_input_details`, `top_n_tokens` when asked).

    Special tokens (end of sequence and the like) are dropped: they are not answer text and their near-certain
    probabilities would inflate every score.
    """
    if isinstance(response, list):
        if len(response) != 1:
            raise MalformedLogprobs("[0]", f"expected one generation, got {len(response)}")
        response = response[0]
    details = _mapping(response, "[0]").get("details")
    if details is None:
        raise LogprobsUnavailable("[0].details", "request it with parameters.details=true")
    details = _mapping(details, "[0].details")
    raw_tokens = _required_list(details, "tokens", prefix="[0].details.")
    top_tokens = details.get("top_tokens")
    if top_tokens is not None and (not isinstance(top_tokens, list) or len(top_tokens) != len(raw_tokens)):
        raise MalformedLogprobs("[0].details.top_tokens", "expected one list of candidates per generated token")
    positions, chosen = _generated_tokens(raw_tokens, "[0].details.tokens", special="special", logprob="logprob")
    alternatives = [
        _alternatives(top_tokens[i], f"[0].details.top_tokens[{i}]", "text")
        for i in positions
        if top_tokens is not None
    ]
    prefill = details.get("prefill")
    return replace(
        chosen,
        alternatives=tuple(alternatives) if top_tokens is not None and any(alternatives) else None,
        prompt_logprobs=_tgi_prefill(prefill) if prefill else None,
    )


def from_lmi_details(response: Mapping[str, Any]) -> TokenLogprobs:
    """DJL LMI rolling-batch response with `details` (djl-serving lmi_input_output_schema.md): `details.tokens`
    holds `{id, text, log_prob}` per generated token, the chosen token only (no alternatives)."""
    details = response.get("details")
    if details is None:
        raise LogprobsUnavailable("details", "request it with parameters.details=true")
    raw_tokens = _required_list(_mapping(details, "details"), "tokens", prefix="details.")
    return _generated_tokens(raw_tokens, "details.tokens", special="special_token", logprob="log_prob")[1]


def _generated_tokens(
    raw_tokens: list[Any], where: str, *, special: str, logprob: str
) -> tuple[list[int], TokenLogprobs]:
    """(positions kept, their tokens): special tokens (end of sequence and the like) are dropped, being no answer
    text, and their near-certain probabilities would inflate every score."""
    positions: list[int] = []
    tokens: list[str] = []
    ids: list[int | None] = []
    values: list[float] = []
    for i, raw in enumerate(raw_tokens):
        entry = _mapping(raw, f"{where}[{i}]")
        if entry.get(special, False):
            continue
        positions.append(i)
        tokens.append(_string(entry.get("text"), f"{where}[{i}].text"))
        ids.append(_token_id(entry.get("id"), f"{where}[{i}].id"))
        values.append(_logprob(entry.get(logprob), f"{where}[{i}].{logprob}"))
    return positions, TokenLogprobs(tokens=tuple(tokens), logprobs=tuple(values), token_ids=tuple(ids))


def _decode_ids(ids: Sequence[int], tokenizer: Tokenizer | None) -> list[str]:
    """Per-token text whose concatenation is the decoded completion.

    A streaming decoder is used because byte-level tokens may split one UTF-8 character: the token that
    completes the character carries it, the earlier ones get "".
    """
    if tokenizer is None:
        return [undecoded_token(token_id) for token_id in ids]
    stream = DecodeStream(skip_special_tokens=False)
    return [stream.step(tokenizer, token_id) or "" for token_id in ids]


def _bedrock_prompt_logprobs(entries: Any) -> tuple[float | None, ...] | None:
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise MalformedLogprobs("prompt_logprobs", f"expected a list, got {type(entries).__name__}")
    if entries and entries[0] is not None:
        raise MalformedLogprobs("prompt_logprobs[0]", "the first prompt token has no context and must be null")
    values: list[float | None] = [None] if entries else []
    for i, entry in enumerate(entries[1:], start=1):
        values.append(_single_id_logprob(entry, f"prompt_logprobs[{i}]")[1])
    return tuple(values)


def _tgi_prefill(prefill: Any) -> tuple[float | None, ...]:
    if not isinstance(prefill, list):
        raise MalformedLogprobs("[0].details.prefill", f"expected a list, got {type(prefill).__name__}")
    values: list[float | None] = []
    for i, raw in enumerate(prefill):
        where = f"[0].details.prefill[{i}]"
        value = _mapping(raw, where).get("logprob")
        if value is None and i == 0:
            values.append(None)
        else:
            values.append(_logprob(value, f"{where}.logprob"))
    return tuple(values)


def _single_id_logprob(entry: Any, where: str) -> tuple[int, float]:
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise MalformedLogprobs(where, 'expected a single-key object {"<token id>": logprob}')
    ((key, value),) = entry.items()
    try:
        token_id = int(key)
    except (TypeError, ValueError):
        raise MalformedLogprobs(where, f"token id {key!r} is not an integer") from None
    return token_id, _logprob(value, where)


def _alternatives(raw: Any, where: str, text_key: str) -> tuple[tuple[str, float], ...]:
    """Top-k (token, logprob) pairs; chat names the token `token`, TGI names it `text`."""
    if not isinstance(raw, list):
        raise MalformedLogprobs(where, f"expected a list, got {type(raw).__name__}")
    pairs = []
    for j, item in enumerate(raw):
        candidate = _mapping(item, f"{where}[{j}]")
        pairs.append(
            (
                _string(candidate.get(text_key), f"{where}[{j}].{text_key}"),
                _logprob(candidate.get("logprob"), f"{where}[{j}].logprob"),
            )
        )
    return tuple(pairs)


def _required_list(container: Any, key: str, prefix: str = "") -> list[Any]:
    if not isinstance(container, Mapping):
        raise MalformedLogprobs(prefix.rstrip(".") or "<response>", "expected a JSON object")
    value = container.get(key)
    if value is None:
        raise LogprobsUnavailable(prefix + key)
    if not isinstance(value, list):
        raise MalformedLogprobs(prefix + key, f"expected a list, got {type(value).__name__}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedLogprobs(where, f"expected an object, got {type(value).__name__}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise MalformedLogprobs(where, f"expected a string, got {type(value).__name__}")
    return value


def _token_id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedLogprobs(where, f"expected an integer token id, got {value!r}")
    return value


def _logprob(value: Any, where: str) -> float:
    """A log-probability is a finite number <= 0 (-inf allowed: a token the model gave zero probability)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedLogprobs(where, f"expected a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or value > 0.0:
        raise MalformedLogprobs(where, f"{value} is not a log-probability (must be <= 0)")
    return value
