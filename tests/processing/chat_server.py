"""A real HTTP server on 127.0.0.1 answering chat completions with recorded OpenAI-format payloads."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.processing.recorded import payload

Responder = Callable[[dict], tuple[int, Any]]


class RecordedServer:
    """Answers each POST with the next queued (status, body), or with `responder(request body)` when set,
    and records what it was sent."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responses: list[tuple[int, str]] = []
        self.received: list[tuple[str, dict[str, str], dict]] = []
        self.responder = responder
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                server.received.append((self.path, dict(self.headers), body))
                status, reply = server.responder(body) if server.responder else server.responses.pop(0)
                encoded = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reply(self, status: int, body: object) -> None:
        self.responses.append((status, body if isinstance(body, str) else json.dumps(body)))


@contextmanager
def serving(responder: Responder | None = None) -> Iterator[RecordedServer]:
    recorded = RecordedServer(responder)
    thread = threading.Thread(target=recorded.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        recorded.httpd.shutdown()
        recorded.httpd.server_close()
        thread.join()


def chat_completion(pieces: Sequence[tuple[str, float]], *, prompt_tokens: int) -> dict:
    """The recorded `openai_chat_logprobs` payload carrying these (token, probability) pieces as its completion,
    each with its top-2 alternatives, in the documented `choices[0].logprobs.content` shape."""
    response = payload("openai_chat_logprobs")
    response["choices"][0]["message"]["content"] = "".join(token for token, _ in pieces)
    response["choices"][0]["logprobs"]["content"] = [
        {
            "token": token,
            "logprob": math.log(prob),
            "bytes": list(token.encode()),
            "top_logprobs": [
                {"token": token, "logprob": math.log(prob), "bytes": list(token.encode())},
                {"token": " maybe", "logprob": math.log(max(1e-6, (1 - prob) / 2)), "bytes": list(b" maybe")},
            ],
        }
        for token, prob in pieces
    ]
    response["usage"] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(pieces),
        "total_tokens": prompt_tokens + len(pieces),
    }
    return response


def word_pieces(text: str, prob: float) -> list[tuple[str, float]]:
    """`text` split into word tokens (leading space kept, as BPE tokenizers do), each with probability `prob`."""
    words = text.split(" ")
    return [(word if i == 0 else " " + word, prob) for i, word in enumerate(words)]


def prompt_word_count(body: dict) -> int:
    """What the recorded server reports as prompt tokens: the words of every message."""
    return sum(len(message["content"].split()) for message in body["messages"])
