"""The `<think>` span is split off the answer, in text and at the token level, however the tag is tokenised."""

from __future__ import annotations

import pytest

from processing.confidence.parsing import from_bedrock_completion, from_chat_completion, from_tgi_details
from processing.confidence.reasoning import (
    UndecodedTokens,
    split_completion,
    split_reasoning_text,
    split_reasoning_tokens,
)
from processing.interfaces import TokenLogprobs
from tests.processing.recorded import payload


def _logprobs(*pieces: tuple[str, float]) -> TokenLogprobs:
    return TokenLogprobs(
        tokens=tuple(t for t, _ in pieces),
        logprobs=tuple(lp for _, lp in pieces),
        token_ids=(None,) * len(pieces),
        alternatives=tuple(((t, lp),) for t, lp in pieces),
    )


@pytest.mark.parametrize(
    ("text", "reasoning", "answer"),
    [
        ("Platelets.\n</think>\n\nYes.", "Platelets.", "Yes."),
        ("<think>\nPlatelets.\n</think>\n\nYes.", "Platelets.", "Yes."),
        ("<think>\nStill thinking", "Still thinking", ""),
        ("  Yes, plainly.\n", None, "Yes, plainly."),
    ],
)
def test_split_text(text: str, reasoning: str | None, answer: str) -> None:
    split = split_reasoning_text(text)
    assert (split.reasoning, split.answer) == (reasoning, answer)


def test_tgi_completion_splits_at_the_added_think_token() -> None:
    split = split_reasoning_tokens(from_tgi_details(payload("tgi_generate_details")))
    assert split.reasoning is not None
    assert "".join(split.reasoning.tokens) == "Aspirin inhibits platelets.\n"
    assert "".join(split.answer.tokens) == "Yes, it reduces risk."
    assert split.answer.logprobs == (-0.3, -0.1, -0.5, -1.6, -0.7, -0.05)
    assert split.answer.alternatives is not None
    assert len(split.answer.alternatives) == 6


def test_tag_split_over_several_tokens_belongs_to_neither_side() -> None:
    split = split_reasoning_tokens(
        _logprobs(
            ("<", -0.1),
            ("think", -0.1),
            (">\n", -0.1),
            ("Hm", -0.9),
            ("m", -0.2),
            ("</", -0.1),
            ("think", -0.1),
            (">\n\n", -0.1),
            ("No", -0.4),
            (".", -0.1),
        )
    )
    assert split.reasoning is not None
    assert split.reasoning.tokens == ("Hm", "m")
    assert split.answer.tokens == ("No", ".")
    assert split.answer.logprobs == (-0.4, -0.1)


def test_completion_cut_off_in_reasoning_has_an_empty_answer() -> None:
    split = split_reasoning_tokens(_logprobs(("<think>", -0.1), ("\n", -0.1), ("Let", -0.5), (" me", -0.2)))
    assert split.reasoning is not None
    assert split.reasoning.tokens == ("Let", " me")
    assert split.answer.tokens == ()


def test_plain_answer_is_all_answer() -> None:
    parsed = from_chat_completion(payload("openai_chat_logprobs"))
    split = split_reasoning_tokens(parsed)
    assert split.reasoning is None
    assert split.answer is parsed


def test_undecoded_ids_cannot_be_split() -> None:
    with pytest.raises(UndecodedTokens, match="tokenizer path"):
        split_reasoning_tokens(from_bedrock_completion(payload("bedrock_cmi_completion")))


@pytest.mark.parametrize(
    ("text", "opens", "limit", "expected"),
    [
        ("Platelets, so", True, True, ("Platelets, so", "", True)),  # the template opened <think>: cut inside it
        ("<think>\nPlatelets, so", False, True, ("Platelets, so", "", True)),
        ("Platelets.\n</think>\n\nYes, but", True, True, ("Platelets.", "Yes, but", False)),  # cut in the answer
        ("Yes.", True, False, (None, "Yes.", False)),  # ended on its own: an answer, whatever the prompt
        ("Yes, plainly", False, True, (None, "Yes, plainly", False)),  # no reasoning anywhere
    ],
)
def test_split_completion_tells_a_reply_cut_inside_reasoning(text, opens, limit, expected) -> None:
    split = split_completion(text, prompt_opens_reasoning=opens, hit_token_limit=limit)
    assert (split.reasoning, split.answer, split.cut_in_reasoning) == expected
