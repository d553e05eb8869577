"""SageMaker DJL LMI generator through botocore's Stubber.

The recorded response follows djl-serving's "LMI handlers Inference API Schema"
(serving/docs/lmi/user_guides/lmi_input_output_schema.md), rolling batch, non-streaming: one object with
`generated_text` and `details` (`finish_reason`, `generated_tokens`, `inputs`, `tokens` of `{id, text,
log_prob}`); with `OPTION_TGI_COMPAT=true` the same object inside a list; a generation error as
`generated_text: ""` with `finish_reason: "error"`.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from processing.generators.chat_template import ASSISTANT, USER
from processing.generators.errors import GeneratorError, MalformedResponse
from processing.generators.sagemaker_lmi import SageMakerLMIGenerator
from processing.interfaces import Generator, Message
from processing.retry import RetryPolicy
from tests.processing.recorded import payload, streaming_body

ENDPOINT = "ragops-dev-llm"
MESSAGES = [Message("system", "Answer yes, no or maybe."), Message("user", "Does aspirin reduce risk?")]
PROMPT = f"Answer yes, no or maybe.{USER}Does aspirin reduce risk?{ASSISTANT}<think>\n"
BODY = {
    "inputs": PROMPT,
    "parameters": {"max_new_tokens": 256, "do_sample": False, "details": True, "return_full_text": False},
}


def _generate(response: object, *, logprobs: bool = True):  # type: ignore[no-untyped-def]
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    generator = SageMakerLMIGenerator(ENDPOINT, client=client, retry=RetryPolicy(1, 0.0, 0.0))
    assert isinstance(generator, Generator)
    expected = {"EndpointName": ENDPOINT, "ContentType": "application/json", "Accept": "application/json"}
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke_endpoint",
            {"Body": streaming_body(response), "ContentType": "application/json"},
            expected | {"Body": json.dumps(BODY)},
        )
        generation = generator.generate(MESSAGES, max_tokens=256, logprobs=logprobs)
        stubber.assert_no_pending_responses()
    return generation


@pytest.mark.parametrize("tgi_compat", [False, True])
def test_the_object_response_gives_answer_reasoning_and_chosen_token_logprobs(tgi_compat: bool) -> None:
    response = payload("lmi_generate_details")
    generation = _generate([response] if tgi_compat else response)
    assert (generation.reasoning, generation.text) == ("Aspirin inhibits platelets.", "Yes, it reduces risk.")
    assert generation.logprobs is not None
    assert "".join(generation.logprobs.tokens) == response["generated_text"]
    assert generation.logprobs.alternatives is None  # LMI returns the chosen token only
    assert (generation.completion_tokens, generation.stop_reason) == (13, "eos_token")


def test_a_reply_cut_inside_reasoning_is_no_answer() -> None:
    response = payload("lmi_generate_details")
    response["generated_text"] = "Aspirin inhibits"
    response["details"] |= {
        "finish_reason": "length",
        "generated_tokens": 2,
        "tokens": response["details"]["tokens"][:3],
    }
    generation = _generate(response)
    assert (generation.text, generation.reasoning, generation.truncated_in_reasoning) == ("", "Aspirin inhibits", True)


def test_an_error_during_generation_is_raised_not_answered() -> None:
    error = {
        "generated_text": "",
        "details": {"finish_reason": "error", "generated_tokens": None, "inputs": None, "tokens": None},
    }
    with pytest.raises(GeneratorError, match=f"sagemaker-lmi {ENDPOINT}: the server reported an error"):
        _generate(error)


def test_failures_name_the_lmi_backend() -> None:
    with pytest.raises(MalformedResponse, match=r"^sagemaker-lmi: malformed response at `<response>`"):
        _generate("not an object")
