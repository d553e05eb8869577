"""Separate a DeepSeek-R1 style `<think>...</think>` reasoning span from the answer.

Reasoning tokens are long, exploratory and mostly confident, the answer is short: scored together, the
reasoning would drown the answer's signal. The chat template opens the `<think>` block in the prompt, so
completions usually contain only the closing tag; both forms are handled. A completion cut off inside the
reasoning (no closing tag after an opening one) has reasoning and an empty answer; one cut off before it
produced any tag cannot be told from a plain answer by its text alone: `split_completion` also knows whether the
prompt opened the span and whether the server stopped at the token limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from processing.confidence.parsing import UNDECODED_TOKEN_PREFIX, LogprobsError
from processing.interfaces import TokenLogprobs

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


class UndecodedTokens(LogprobsError):
    """Token texts are bare ids, so the reasoning span cannot be located in them."""


@dataclass(frozen=True)
class TextSplit:
    """`cut_in_reasoning`: the completion hit its token limit inside the reasoning span, so it has no answer."""

    reasoning: str | None
    answer: str
    cut_in_reasoning: bool = False


@dataclass(frozen=True)
class TokenSplit:
    """`reasoning` is None when the completion has no reasoning span; tag and separator tokens are in neither."""

    reasoning: TokenLogprobs | None
    answer: TokenLogprobs


def split_reasoning_text(text: str) -> TextSplit:
    """Split completion text into (reasoning, answer), both stripped of the tags and surrounding whitespace."""
    close = text.find(THINK_CLOSE)
    if close >= 0:
        reasoning = text[:close]
        reasoning = reasoning.split(THINK_OPEN, 1)[1] if THINK_OPEN in reasoning else reasoning
        return TextSplit(reasoning=reasoning.strip(), answer=text[close + len(THINK_CLOSE) :].strip())
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        return TextSplit(reasoning=stripped[len(THINK_OPEN) :].strip(), answer="")
    return TextSplit(reasoning=None, answer=text.strip())


def prompt_opens_reasoning(prompt: str) -> bool:
    """Whether the prompt ends inside an open `<think>` span, so the completion starts with reasoning."""
    return prompt.rstrip().endswith(THINK_OPEN)


def split_completion(text: str, *, prompt_opens_reasoning: bool, hit_token_limit: bool) -> TextSplit:
    """Split a completion, telling a reply cut off inside `<think>` from an answer.

    When the prompt ends by opening `<think>` (the DeepSeek-R1 template does), the completion starts inside the
    reasoning; if the server then stopped at the token limit before `</think>`, everything generated is reasoning
    and there is no answer, not a short answer made of half a thought.
    """
    split = split_reasoning_text(text)
    unclosed = THINK_CLOSE not in text and (prompt_opens_reasoning or split.reasoning is not None)
    if unclosed and hit_token_limit:
        reasoning = split.reasoning if split.reasoning is not None else text.strip()
        return TextSplit(reasoning=reasoning, answer="", cut_in_reasoning=True)
    return split


def split_reasoning_tokens(logprobs: TokenLogprobs) -> TokenSplit:
    """Split per-token log-probabilities at `</think>`, matching on the tokens' concatenated text.

    The tag may be one added token or several pieces ("</", "think", ">"); any token overlapping it belongs to
    neither side, and whitespace-only tokens around the tag are dropped as separators.
    """
    text = "".join(logprobs.tokens)
    if THINK_CLOSE not in text and THINK_OPEN not in text:
        if any(token.startswith(UNDECODED_TOKEN_PREFIX) for token in logprobs.tokens):
            raise UndecodedTokens(
                "token texts are undecoded ids, so `</think>` cannot be located; configure the model's tokenizer path"
            )
        return TokenSplit(reasoning=None, answer=logprobs)
    starts = _token_starts(logprobs.tokens)
    close = text.find(THINK_CLOSE)
    if close < 0:  # cut off inside the reasoning
        reasoning_range = _after_tag(logprobs, starts, text.find(THINK_OPEN) + len(THINK_OPEN))
        return TokenSplit(reasoning=_subset(logprobs, reasoning_range), answer=_subset(logprobs, []))
    opened = text.find(THINK_OPEN, 0, close)
    begin = _after_tag(logprobs, starts, opened + len(THINK_OPEN)) if opened >= 0 else range(len(logprobs.tokens))
    before_close = [i for i in begin if starts[i] + len(logprobs.tokens[i]) <= close]
    answer = _after_tag(logprobs, starts, close + len(THINK_CLOSE))
    return TokenSplit(reasoning=_subset(logprobs, _trim(logprobs, before_close)), answer=_subset(logprobs, answer))


def _token_starts(tokens: tuple[str, ...]) -> list[int]:
    starts, offset = [], 0
    for token in tokens:
        starts.append(offset)
        offset += len(token)
    return starts


def _after_tag(logprobs: TokenLogprobs, starts: list[int], tag_end: int) -> list[int]:
    """Indices of tokens starting at or after `tag_end`, without leading whitespace-only tokens."""
    return _trim(logprobs, [i for i, start in enumerate(starts) if start >= tag_end])


def _trim(logprobs: TokenLogprobs, indices: list[int]) -> list[int]:
    """Drop whitespace-only tokens at both ends: they separate the tag from the text and carry no content."""
    while indices and not logprobs.tokens[indices[0]].strip():
        indices = indices[1:]
    while indices and not logprobs.tokens[indices[-1]].strip():
        indices = indices[:-1]
    return indices


def _subset(logprobs: TokenLogprobs, indices: list[int]) -> TokenLogprobs:
    alternatives = logprobs.alternatives
    return TokenLogprobs(
        tokens=tuple(logprobs.tokens[i] for i in indices),
        logprobs=tuple(logprobs.logprobs[i] for i in indices),
        token_ids=tuple(logprobs.token_ids[i] for i in indices),
        alternatives=None if alternatives is None else tuple(alternatives[i] for i in indices),
        prompt_logprobs=logprobs.prompt_logprobs,
    )
