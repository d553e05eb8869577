"""Bedrock Custom Model Import generator through botocore's Stubber: exact bodies, cold start, bad responses."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from processing.confidence.parsing import MalformedLogprobs
from processing.generators.bedrock_cmi import BedrockCustomModelGenerator
from processing.generators.chat_template import ASSISTANT, USER
from processing.generators.errors import GeneratorError, MalformedResponse
from processing.interfaces import Generator, Message
from processing.retry import RetryPolicy
from tests.processing.recorded import payload, streaming_body

MODEL_ARN = "arn:aws:bedrock:us-east-1:111111111111:imported-model/k2j4example"
NO_WAIT = RetryPolicy(max_attempts=3, initial_delay_s=0.0, max_delay_s=0.0)
MESSAGES = [Message("user", "Does aspirin reduce risk?")]
PROMPT = f"{USER}Does aspirin reduce risk?{ASSISTANT}<think>\n"


def _client():
    return boto3.client("bedrock-runtime", region_name="us-east-1")


def _expect(stubber: Stubber, body: dict, response: object) -> None:
    stubber.add_response(
        "invoke_model",
        {"body": streaming_body(response), "contentType": "application/json"},
        {
            "modelId": MODEL_ARN,
            "contentType": "application/json",
            "accept": "application/json",
            "body": json.dumps(body),
        },
    )


def _body(logprobs: bool, max_gen_len: int = 128) -> dict:
    body = {"prompt": PROMPT, "max_gen_len": max_gen_len, "temperature": 0}
    return body | ({"return_logprobs": True} if logprobs else {})


def _generate(response: object, *, logprobs: bool = True, errors: tuple[str, ...] = (), **kwargs):
    client = _client()
    generator = BedrockCustomModelGenerator(MODEL_ARN, client=client, retry=NO_WAIT, **kwargs)
    with Stubber(client) as stubber:
        for code in errors:
            stubber.add_client_error("invoke_model", service_error_code=code, http_status_code=429)
        _expect(stubber, _body(logprobs), response)
        generation = generator.generate(MESSAGES, max_tokens=128, logprobs=logprobs)
        stubber.assert_no_pending_responses()
    return generation


def test_completion_with_logprobs_reports_ids_without_a_tokenizer() -> None:
    generation = _generate(payload("bedrock_cmi_completion"))
    assert generation.text == "Yes, aspirin lowers the risk."
    assert generation.reasoning is None
    assert generation.logprobs is not None
    assert generation.logprobs.tokens[0] == "<id:7566>"
    assert generation.logprobs.prompt_logprobs[0] is None
    assert (generation.prompt_tokens, generation.completion_tokens, generation.stop_reason) == (6, 7, "stop")
    assert generation.model_id == MODEL_ARN


def test_token_ids_decode_through_the_local_tokenizer(tokenizer_path: Path) -> None:
    generation = _generate(payload("bedrock_cmi_completion"), tokenizer_path=tokenizer_path)
    assert "".join(generation.logprobs.tokens) == " Yes, café risk."


def test_without_logprobs_none_are_requested_or_reported() -> None:
    response = payload("bedrock_cmi_completion")
    del response["logprobs"], response["prompt_logprobs"]
    generation = _generate(response, logprobs=False)
    assert generation.logprobs is None
    assert generation.text == "Yes, aspirin lowers the risk."


def test_throttling_and_cold_start_are_retried_then_succeed() -> None:
    generation = _generate(payload("bedrock_cmi_completion"), errors=("ThrottlingException", "ModelNotReadyException"))
    assert generation.completion_tokens == 7


def test_a_model_that_never_gets_ready_fails_after_bounded_attempts() -> None:
    client = _client()
    generator = BedrockCustomModelGenerator(MODEL_ARN, client=client, retry=NO_WAIT)
    with Stubber(client) as stubber:
        for _ in range(3):
            stubber.add_client_error("invoke_model", service_error_code="ModelNotReadyException", http_status_code=429)
        with pytest.raises(GeneratorError, match=r"still failing after 3 attempts.*ModelNotReadyException"):
            generator.generate(MESSAGES, max_tokens=128)
        stubber.assert_no_pending_responses()


def test_access_denied_fails_at_once() -> None:
    client = _client()
    generator = BedrockCustomModelGenerator(MODEL_ARN, client=client, retry=NO_WAIT)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "invoke_model",
            service_error_code="AccessDeniedException",
            service_message="not authorized",
            http_status_code=403,
        )
        with pytest.raises(GeneratorError, match=r"imported-model/k2j4example: AccessDeniedException: not authorized"):
            generator.generate(MESSAGES, max_tokens=128)


def test_reasoning_is_split_from_the_generation() -> None:
    response = payload("bedrock_cmi_completion")
    response["generation"] = "Platelets matter.\n</think>\n\nYes."
    generation = _generate(response, logprobs=False)
    assert (generation.reasoning, generation.text) == ("Platelets matter.", "Yes.")


def test_missing_logprobs_are_unavailable_not_zero(caplog: pytest.LogCaptureFixture) -> None:
    response = payload("bedrock_cmi_completion")
    del response["logprobs"]
    with caplog.at_level(logging.WARNING):
        generation = _generate(response)
    assert generation.logprobs is None
    assert "`logprobs`" in caplog.text


def test_malformed_logprobs_raise() -> None:
    response = payload("bedrock_cmi_completion")
    response["logprobs"][0] = {"7566": "high"}
    with pytest.raises(MalformedLogprobs, match=r"logprobs\[0\]"):
        _generate(response)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.pop("generation"), "generation"),
        (lambda r: r.__setitem__("generation_token_count", "seven"), "generation_token_count"),
    ],
)
def test_malformed_response_names_the_field(mutate, field) -> None:
    response = payload("bedrock_cmi_completion")
    mutate(response)
    with pytest.raises(MalformedResponse, match=f"`{field}`"):
        _generate(response)


@pytest.mark.parametrize(
    ("arn", "region", "message"),
    [
        ("arn:aws:bedrock:us-east-1:111111111111:custom-model/abc", "us-east-1", "imported model ARN"),
        ("my-model", "us-east-1", "imported model ARN"),
        (MODEL_ARN, "eu-west-1", "model_arn is in us-east-1 but the bedrock-runtime client is in eu-west-1"),
    ],
)
def test_bad_model_settings_are_named(arn, region, message) -> None:
    with pytest.raises(ValueError, match=message):
        BedrockCustomModelGenerator(arn, region_name=region)


def test_missing_tokenizer_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="tokenizer file not found"):
        BedrockCustomModelGenerator(MODEL_ARN, region_name="us-east-1", tokenizer_path=tmp_path / "nope.json")


def test_the_generator_satisfies_the_interface() -> None:
    assert isinstance(BedrockCustomModelGenerator(MODEL_ARN, region_name="us-east-1"), Generator)
