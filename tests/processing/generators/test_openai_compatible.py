"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1 serving recorded payloads."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from processing.confidence.parsing import MalformedLogprobs
from processing.generators.errors import GeneratorError, MalformedResponse
from processing.generators.openai_compatible import OpenAICompatibleGenerator
from processing.interfaces import Generator, Message
from processing.retry import RetryPolicy
from tests.processing.chat_server import RecordedServer, serving
from tests.processing.recorded import payload

NO_WAIT = RetryPolicy(max_attempts=3, initial_delay_s=0.0, max_delay_s=0.0)
MESSAGES = [Message("system", "Answer yes, no or maybe."), Message("user", "Does aspirin reduce risk?")]


@pytest.fixture
def server() -> Iterator[RecordedServer]:
    with serving() as recorded:
        yield recorded


def _client(server: RecordedServer, **kwargs) -> OpenAICompatibleGenerator:
    return OpenAICompatibleGenerator(server.base_url, "deepseek-r1-distill-qwen-7b", retry=NO_WAIT, **kwargs)


def test_logprobs_request_body_and_parsed_generation(server: RecordedServer) -> None:
    server.reply(200, payload("openai_chat_logprobs"))
    client = _client(server, api_key="local-key", top_logprobs=2)
    assert isinstance(client, Generator)
    generation = client.generate(MESSAGES, max_tokens=64, logprobs=True)
    path, headers, body = server.received[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer local-key"
    assert body == {
        "model": "deepseek-r1-distill-qwen-7b",
        "messages": [
            {"role": "system", "content": "Answer yes, no or maybe."},
            {"role": "user", "content": "Does aspirin reduce risk?"},
        ],
        "max_tokens": 64,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 2,
    }
    assert generation.text == "The answer is yes."
    assert generation.reasoning is None
    assert generation.logprobs is not None
    assert generation.logprobs.logprobs[3] == -1.2
    assert (generation.prompt_tokens, generation.completion_tokens, generation.stop_reason) == (42, 5, "stop")


def test_logprobs_not_requested_are_not_asked_for_nor_reported(server: RecordedServer) -> None:
    server.reply(200, payload("openai_chat_logprobs"))
    generation = _client(server).generate(MESSAGES, max_tokens=8)
    body = server.received[0][2]
    assert "logprobs" not in body
    assert "top_logprobs" not in body
    assert "Authorization" not in server.received[0][1]
    assert generation.logprobs is None


def test_think_span_goes_to_reasoning(server: RecordedServer) -> None:
    server.reply(200, payload("tgi_messages_logprobs"))
    generation = _client(server).generate(MESSAGES, max_tokens=64, logprobs=True)
    assert (generation.reasoning, generation.text) == ("Platelets.", "Yes, it helps.")


def test_server_side_reasoning_field_is_used(server: RecordedServer) -> None:
    response = payload("openai_chat_logprobs")
    response["choices"][0]["message"]["reasoning_content"] = "Platelet inhibition.\n"
    server.reply(200, response)
    assert _client(server).generate(MESSAGES, max_tokens=64).reasoning == "Platelet inhibition."


def test_rate_limit_and_server_errors_are_retried(server: RecordedServer) -> None:
    server.reply(429, {"error": "rate limited"})
    server.reply(503, {"error": "loading"})
    server.reply(200, payload("openai_chat_logprobs"))
    generation = _client(server).generate(MESSAGES, max_tokens=64, logprobs=True)
    assert len(server.received) == 3
    assert generation.text == "The answer is yes."


def test_retries_are_bounded(server: RecordedServer) -> None:
    for _ in range(3):
        server.reply(500, {"error": "boom"})
    with pytest.raises(GeneratorError, match="still failing after 3 attempts: HTTP 500"):
        _client(server).generate(MESSAGES, max_tokens=8)
    assert len(server.received) == 3


def test_client_errors_fail_at_once_with_the_server_message(server: RecordedServer) -> None:
    server.reply(400, {"error": "max_tokens is too large"})
    with pytest.raises(GeneratorError, match=r"HTTP 400.*max_tokens is too large"):
        _client(server).generate(MESSAGES, max_tokens=10**6)
    assert len(server.received) == 1


def test_non_json_body_is_malformed(server: RecordedServer) -> None:
    server.reply(200, "<html>proxy error</html>")
    with pytest.raises(MalformedResponse, match="not JSON"):
        _client(server).generate(MESSAGES, max_tokens=8)


def test_missing_content_is_malformed(server: RecordedServer) -> None:
    response = payload("openai_chat_logprobs")
    del response["choices"][0]["message"]["content"]
    server.reply(200, response)
    with pytest.raises(MalformedResponse, match=r"choices\[0\]\.message\.content"):
        _client(server).generate(MESSAGES, max_tokens=8)


def test_server_without_logprobs_support_reports_them_unavailable(
    server: RecordedServer, caplog: pytest.LogCaptureFixture
) -> None:
    response = payload("openai_chat_logprobs")
    response["choices"][0]["logprobs"] = None
    server.reply(200, response)
    with caplog.at_level(logging.WARNING):
        generation = _client(server).generate(MESSAGES, max_tokens=8, logprobs=True)
    assert generation.logprobs is None
    assert "no token log-probabilities" in caplog.text


def test_malformed_logprobs_raise(server: RecordedServer) -> None:
    response = payload("openai_chat_logprobs")
    response["choices"][0]["logprobs"]["content"][0]["logprob"] = 0.5
    server.reply(200, response)
    with pytest.raises(MalformedLogprobs, match=r"content\[0\]\.logprob"):
        _client(server).generate(MESSAGES, max_tokens=8, logprobs=True)


def test_unreachable_server_fails_after_bounded_retries() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OpenAICompatibleGenerator(f"http://127.0.0.1:{port}/v1", "m", retry=NO_WAIT, timeout_s=2)
    with pytest.raises(GeneratorError, match=rf"127\.0\.0\.1:{port}.*after 3 attempts"):
        client.generate(MESSAGES, max_tokens=8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "localhost:8000"}, "base_url"),
        ({"model": ""}, "model"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_settings_are_named(kwargs, message) -> None:
    settings = {"base_url": "http://127.0.0.1:8000/v1", "model": "m"} | kwargs
    with pytest.raises(ValueError, match=message):
        OpenAICompatibleGenerator(**settings)


@pytest.mark.parametrize(
    "message",
    [
        {"role": "assistant", "content": "<think>\nThe trial shows"},  # the open span in the content
        {"role": "assistant", "content": "", "reasoning_content": "The trial shows"},  # vLLM's reasoning parser
    ],
)
def test_a_reply_stopped_at_the_limit_inside_reasoning_is_no_answer(server: RecordedServer, message: dict) -> None:
    response = payload("openai_chat_logprobs")
    response["choices"][0] |= {"message": message, "finish_reason": "length"}
    server.reply(200, response)
    generation = _client(server).generate(MESSAGES, max_tokens=4)
    assert (generation.text, generation.reasoning) == ("", "The trial shows")
    assert generation.truncated_in_reasoning
