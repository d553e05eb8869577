"""SageMaker TGI generator through botocore's Stubber: exact request bodies, retries, malformed and missing data.

The recorded responses follow TGI 3.0.1's OpenAPI document (docs/openapi.json: `GenerateResponse`, `Details`,
`Token`, `PrefillToken`, `FinishReason`), the version of the JumpStart image the models stack deploys. The echoed
variants reproduce router/src/server.rs `generate`: with `return_full_text` true the response's `generated_text`
is the request's `inputs` followed by the output text, while `details.tokens` lists generated tokens only.
"""

from __future__ import annotations

import json
import logging

import boto3
import pytest
from botocore.stub import Stubber

from processing.generators.chat_template import ASSISTANT, BOS, USER
from processing.generators.errors import GeneratorError, MalformedResponse
from processing.generators.sagemaker_tgi import SageMakerTGIGenerator
from processing.interfaces import Generator, Message
from processing.retry import RetryPolicy
from tests.processing.recorded import payload, streaming_body

ENDPOINT = "ragops-dev-llm"
NO_WAIT = RetryPolicy(max_attempts=3, initial_delay_s=0.0, max_delay_s=0.0)
MESSAGES = [Message("system", "Answer yes, no or maybe."), Message("user", "Does aspirin reduce risk?")]
PROMPT = f"Answer yes, no or maybe.{USER}Does aspirin reduce risk?{ASSISTANT}<think>\n"


@pytest.fixture
def stubbed() -> tuple[SageMakerTGIGenerator, Stubber]:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield SageMakerTGIGenerator(ENDPOINT, client=client, retry=NO_WAIT), stubber
        stubber.assert_no_pending_responses()


def _expect(stubber: Stubber, body: dict, response: object) -> None:
    stubber.add_response(
        "invoke_endpoint",
        {"Body": streaming_body(response), "ContentType": "application/json"},
        {
            "EndpointName": ENDPOINT,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(body),
        },
    )


def _generate_body(logprobs: bool) -> dict:
    parameters = {"max_new_tokens": 256, "do_sample": False, "details": True, "return_full_text": False}
    if logprobs:
        parameters |= {"decoder_input_details": True, "top_n_tokens": 5}
    return {"inputs": PROMPT, "parameters": parameters}


def test_generate_with_details_parses_tokens_reasoning_and_counts(stubbed) -> None:
    generator, stubber = stubbed
    assert isinstance(generator, Generator)
    _expect(stubber, _generate_body(logprobs=True), payload("tgi_generate_details"))
    generation = generator.generate(MESSAGES, max_tokens=256, logprobs=True)
    assert not PROMPT.startswith(BOS)  # TGI's tokenizer adds it
    assert generation.text == "Yes, it reduces risk."
    assert generation.reasoning == "Aspirin inhibits platelets."
    assert generation.logprobs is not None
    assert len(generation.logprobs.tokens) == 13  # the special end-of-sentence token is not scored
    assert generation.logprobs.prompt_logprobs[0] is None
    assert (generation.prompt_tokens, generation.completion_tokens) == (8, 14)
    assert generation.stop_reason == "eos_token"


def test_the_request_turns_the_prompt_echo_off() -> None:
    generator = SageMakerTGIGenerator(ENDPOINT, region_name="us-east-1")
    parameters = generator.request_body(MESSAGES, max_tokens=8, logprobs=False)["parameters"]
    assert parameters["return_full_text"] is False  # TGI defaults it to true for a model loaded from a folder


def test_an_echoed_prompt_is_not_part_of_the_answer(stubbed) -> None:
    generator, stubber = stubbed
    response = payload("tgi_generate_echoed")
    assert response[0]["generated_text"].startswith(PROMPT)
    _expect(stubber, _generate_body(logprobs=True), response)
    generation = generator.generate(MESSAGES, max_tokens=256, logprobs=True)
    assert (generation.reasoning, generation.text) == ("Aspirin inhibits platelets.", "Yes, it reduces risk.")
    assert not generation.truncated_in_reasoning
    tokens = "".join(generation.logprobs.tokens)  # generated tokens only: the prompt's are the prefill
    assert tokens == "Aspirin inhibits platelets.\n</think>\n\nYes, it reduces risk."
    assert len(generation.logprobs.prompt_logprobs) == len(response[0]["details"]["prefill"])


def test_r1_cut_before_closing_think_returns_neither_prompt_nor_reasoning_as_the_answer(stubbed) -> None:
    generator, stubber = stubbed
    _expect(stubber, _generate_body(logprobs=True), payload("tgi_generate_cut_in_reasoning"))
    generation = generator.generate(MESSAGES, max_tokens=256, logprobs=True)
    assert generation.text == ""
    assert generation.reasoning == "Aspirin inhibits platelets"
    assert (generation.truncated_in_reasoning, generation.stop_reason) == (True, "length")
    assert "Does aspirin" not in generation.reasoning


def test_an_answer_that_ends_normally_without_closing_think_is_not_a_truncation(stubbed) -> None:
    generator, stubber = stubbed
    response = payload("tgi_generate_cut_in_reasoning")
    response[0]["details"]["finish_reason"] = "eos_token"
    _expect(stubber, _generate_body(logprobs=True), response)
    generation = generator.generate(MESSAGES, max_tokens=256, logprobs=True)
    assert (generation.text, generation.truncated_in_reasoning) == ("Aspirin inhibits platelets", False)


def test_a_djl_lmi_object_response_is_refused_by_name(stubbed) -> None:
    """DJL LMI's rolling-batch response (djl-serving lmi_input_output_schema.md) is one object, not a list."""
    generator, stubber = stubbed
    lmi = {
        "generated_text": "Deep Learning is a really cool field",
        "details": {"finish_reason": "length", "generated_tokens": 8, "inputs": "What is Deep Learning?"},
    }
    _expect(stubber, _generate_body(logprobs=False), lmi)
    with pytest.raises(MalformedResponse, match="looks like DJL LMI; select it with generator=sagemaker-lmi"):
        generator.generate(MESSAGES, max_tokens=256)


def test_no_alternatives_are_asked_for_when_top_n_tokens_is_zero() -> None:
    generator = SageMakerTGIGenerator(ENDPOINT, region_name="us-east-1", top_n_tokens=0)
    assert "top_n_tokens" not in generator.request_body(MESSAGES, max_tokens=8, logprobs=True)["parameters"]
    chat = SageMakerTGIGenerator(ENDPOINT, region_name="us-east-1", api="messages", top_n_tokens=0)
    assert "top_logprobs" not in chat.request_body(MESSAGES, max_tokens=8, logprobs=True)


def test_without_logprobs_only_details_are_requested(stubbed) -> None:
    generator, stubber = stubbed
    response = payload("tgi_generate_details")
    response[0]["details"] |= {"prefill": [], "top_tokens": None}
    _expect(stubber, _generate_body(logprobs=False), response)
    generation = generator.generate(MESSAGES, max_tokens=256)
    assert generation.logprobs is None
    assert generation.prompt_tokens is None  # the prefill is only returned with decoder_input_details


def test_throttling_and_overload_are_retried_then_succeed(stubbed) -> None:
    generator, stubber = stubbed
    stubber.add_client_error("invoke_endpoint", service_error_code="ThrottlingException", http_status_code=400)
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Model is overloaded",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 429},
    )
    _expect(stubber, _generate_body(logprobs=True), payload("tgi_generate_details"))
    assert generator.generate(MESSAGES, max_tokens=256, logprobs=True).text == "Yes, it reduces risk."


def test_retries_are_bounded(stubbed) -> None:
    generator, stubber = stubbed
    for _ in range(3):
        stubber.add_client_error("invoke_endpoint", service_error_code="ServiceUnavailable", http_status_code=503)
    with pytest.raises(GeneratorError, match=f"{ENDPOINT}: still failing after 3 attempts"):
        generator.generate(MESSAGES, max_tokens=256)


def test_a_model_error_is_not_retried(stubbed) -> None:
    generator, stubber = stubbed
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Input validation error: inputs tokens + max_new_tokens must be <= 4096",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 422},
    )
    with pytest.raises(GeneratorError, match=f"sagemaker-tgi {ENDPOINT}: ModelError: Input validation error"):
        generator.generate(MESSAGES, max_tokens=256)


@pytest.mark.parametrize(
    ("response", "field"),
    [
        ({"error": "Request failed during generation"}, "<response>"),
        ([{"generated_text": None}], r"\[0\]\.generated_text"),
        (b"upstream timed out", "Body"),
    ],
)
def test_malformed_responses_name_the_field(stubbed, response, field) -> None:
    generator, stubber = stubbed
    _expect(stubber, _generate_body(logprobs=False), response)
    with pytest.raises(MalformedResponse, match=f"at `{field}`"):
        generator.generate(MESSAGES, max_tokens=256)


def test_missing_details_leave_logprobs_unavailable(stubbed, caplog: pytest.LogCaptureFixture) -> None:
    generator, stubber = stubbed
    _expect(stubber, _generate_body(logprobs=True), [{"generated_text": "Yes."}])
    with caplog.at_level(logging.WARNING):
        generation = generator.generate(MESSAGES, max_tokens=256, logprobs=True)
    assert (generation.text, generation.logprobs, generation.completion_tokens) == ("Yes.", None, None)
    assert "`[0].details`" in caplog.text


def test_messages_api_body_and_chat_response() -> None:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    generator = SageMakerTGIGenerator(ENDPOINT, client=client, api="messages", top_n_tokens=3, retry=NO_WAIT)
    body = {
        "messages": [
            {"role": "system", "content": "Answer yes, no or maybe."},
            {"role": "user", "content": "Does aspirin reduce risk?"},
        ],
        "max_tokens": 128,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 3,
    }
    with Stubber(client) as stubber:
        _expect(stubber, body, payload("tgi_messages_logprobs"))
        generation = generator.generate(MESSAGES, max_tokens=128, logprobs=True)
    assert (generation.reasoning, generation.text) == ("Platelets.", "Yes, it helps.")
    assert generation.logprobs is not None
    assert (generation.prompt_tokens, generation.completion_tokens, generation.stop_reason) == (31, 11, "stop")


def test_without_credentials_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    generator = SageMakerTGIGenerator(ENDPOINT, region_name="us-east-1", retry=NO_WAIT)
    with pytest.raises(GeneratorError, match="no AWS credentials"):
        generator.generate(MESSAGES, max_tokens=8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"endpoint_name": ""}, "endpoint_name"), ({"top_n_tokens": 6}, "top_n_tokens"), ({"api": "chat"}, "api")],
)
def test_bad_settings_are_named(kwargs, message) -> None:
    settings = {"endpoint_name": ENDPOINT, "region_name": "us-east-1"} | kwargs
    with pytest.raises(ValueError, match=message):
        SageMakerTGIGenerator(**settings)
