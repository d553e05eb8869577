"""Every service format becomes the same TokenLogprobs; missing or malformed log-probs are named, never zeros."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from processing.confidence.parsing import (
    LogprobsUnavailable,
    MalformedLogprobs,
    from_bedrock_completion,
    from_chat_completion,
    from_tgi_details,
    load_tokenizer,
)
from tests.processing.recorded import payload


def test_bedrock_completion_without_tokenizer_reports_ids() -> None:
    parsed = from_bedrock_completion(payload("bedrock_cmi_completion"))
    assert parsed.token_ids == (7566, 11, 24663, 43154, 279, 5326, 13)
    assert parsed.tokens[:2] == ("<id:7566>", "<id:11>")
    assert parsed.logprobs == (-0.2, -0.05, -0.9, -1.4, -0.1, -0.3, -0.02)
    assert parsed.alternatives is None  # top-1 only
    assert parsed.prompt_logprobs == (None, -8.5, -6.1, -3.3, -2.0, -0.8)


def test_bedrock_completion_decodes_through_a_local_tokenizer(tokenizer_path: Path) -> None:
    parsed = from_bedrock_completion(payload("bedrock_cmi_completion"), load_tokenizer(tokenizer_path))
    assert parsed.tokens == (" Yes", ",", " caf", "", "é", " risk", ".")
    assert "".join(parsed.tokens) == " Yes, café risk."


def test_bedrock_prompt_logprobs_absent_is_none() -> None:
    response = payload("bedrock_cmi_completion")
    del response["prompt_logprobs"]
    assert from_bedrock_completion(response).prompt_logprobs is None


def test_missing_tokenizer_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        load_tokenizer(tmp_path / "tokenizer.json")


@pytest.mark.parametrize(
    ("mutate", "error", "field"),
    [
        (lambda r: r.pop("logprobs"), LogprobsUnavailable, "logprobs"),
        (lambda r: r.__setitem__("logprobs", {"7566": -0.2}), MalformedLogprobs, "logprobs"),
        (lambda r: r["logprobs"].__setitem__(1, {"11": -0.05, "12": -3.0}), MalformedLogprobs, "logprobs[1]"),
        (lambda r: r["logprobs"].__setitem__(2, {"abc": -0.9}), MalformedLogprobs, "logprobs[2]"),
        (lambda r: r["logprobs"].__setitem__(3, {"43154": None}), MalformedLogprobs, "logprobs[3]"),
        (lambda r: r["logprobs"].__setitem__(4, {"279": 0.7}), MalformedLogprobs, "logprobs[4]"),
        (lambda r: r["prompt_logprobs"].__setitem__(0, {"1": -1.0}), MalformedLogprobs, "prompt_logprobs[0]"),
        (lambda r: r["prompt_logprobs"].__setitem__(2, None), MalformedLogprobs, "prompt_logprobs[2]"),
    ],
)
def test_bedrock_bad_logprobs_name_the_field(mutate, error, field) -> None:
    response = payload("bedrock_cmi_completion")
    mutate(response)
    with pytest.raises(error) as raised:
        from_bedrock_completion(response)
    assert raised.value.field == field
    assert f"`{field}`" in str(raised.value)


def test_chat_completion_with_top_logprobs() -> None:
    parsed = from_chat_completion(payload("openai_chat_logprobs"))
    assert "".join(parsed.tokens) == "The answer is yes."
    assert parsed.logprobs == (-0.1, -0.2, -0.05, -1.2, -0.02)
    assert parsed.token_ids == (None,) * 5
    assert parsed.alternatives is not None
    assert parsed.alternatives[3] == ((" yes", -1.2), (" no", -1.6))
    assert parsed.prompt_logprobs is None


def test_chat_completion_without_top_logprobs_has_no_alternatives() -> None:
    response = payload("openai_chat_logprobs")
    for entry in response["choices"][0]["logprobs"]["content"]:
        entry["top_logprobs"] = []
    assert from_chat_completion(response).alternatives is None


def test_tgi_messages_api_is_the_chat_format() -> None:
    parsed = from_chat_completion(payload("tgi_messages_logprobs"))
    assert "".join(parsed.tokens) == "Platelets.\n</think>\n\nYes, it helps."
    assert parsed.alternatives is not None
    assert all(len(candidates) == 1 for candidates in parsed.alternatives)


@pytest.mark.parametrize(
    ("mutate", "error", "field"),
    [
        (lambda r: r["choices"][0].__setitem__("logprobs", None), LogprobsUnavailable, "choices[0].logprobs"),
        (lambda r: r["choices"][0]["logprobs"].pop("content"), LogprobsUnavailable, "choices[0].logprobs.content"),
        (lambda r: r.__setitem__("choices", []), MalformedLogprobs, "choices"),
        (
            lambda r: r["choices"][0]["logprobs"]["content"][2].pop("logprob"),
            MalformedLogprobs,
            "choices[0].logprobs.content[2].logprob",
        ),
        (
            lambda r: r["choices"][0]["logprobs"]["content"][1]["top_logprobs"][1].__setitem__("logprob", "x"),
            MalformedLogprobs,
            "choices[0].logprobs.content[1].top_logprobs[1].logprob",
        ),
    ],
)
def test_chat_bad_logprobs_name_the_field(mutate, error, field) -> None:
    response = payload("openai_chat_logprobs")
    mutate(response)
    with pytest.raises(error) as raised:
        from_chat_completion(response)
    assert raised.value.field == field


def test_tgi_details_drop_special_tokens_and_keep_prefill() -> None:
    parsed = from_tgi_details(payload("tgi_generate_details"))
    assert "".join(parsed.tokens) == "Aspirin inhibits platelets.\n</think>\n\nYes, it reduces risk."
    assert 151643 not in parsed.token_ids  # end of sentence is special: not scored
    assert len(parsed.tokens) == len(parsed.alternatives or ()) == 13
    assert parsed.alternatives[10][0] == (" reduces", -1.6)
    assert parsed.prompt_logprobs is not None
    assert parsed.prompt_logprobs[0] is None
    assert parsed.prompt_logprobs[1:3] == (-9.1, -4.2)


def test_tgi_details_without_top_tokens_or_prefill() -> None:
    response = payload("tgi_generate_details")
    del response[0]["details"]["top_tokens"]
    response[0]["details"]["prefill"] = []
    parsed = from_tgi_details(response)
    assert parsed.alternatives is None
    assert parsed.prompt_logprobs is None
    assert math.isclose(sum(parsed.logprobs), -4.031)


@pytest.mark.parametrize(
    ("mutate", "error", "field"),
    [
        (lambda r: r[0].pop("details"), LogprobsUnavailable, "[0].details"),
        (lambda r: r[0]["details"].pop("tokens"), LogprobsUnavailable, "[0].details.tokens"),
        (
            lambda r: r[0]["details"]["tokens"][4].__setitem__("logprob", None),
            MalformedLogprobs,
            "[0].details.tokens[4].logprob",
        ),
        (
            lambda r: r[0]["details"]["tokens"][0].__setitem__("id", "2121"),
            MalformedLogprobs,
            "[0].details.tokens[0].id",
        ),
        (lambda r: r[0]["details"]["top_tokens"].pop(), MalformedLogprobs, "[0].details.top_tokens"),
        (
            lambda r: r[0]["details"]["prefill"][3].__setitem__("logprob", None),
            MalformedLogprobs,
            "[0].details.prefill[3].logprob",
        ),
        (lambda r: r.append(r[0]), MalformedLogprobs, "[0]"),
    ],
)
def test_tgi_bad_details_name_the_field(mutate, error, field) -> None:
    response = payload("tgi_generate_details")
    mutate(response)
    with pytest.raises(error) as raised:
        from_tgi_details(response)
    assert raised.value.field == field
