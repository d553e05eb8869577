"""An OpenAI-compatible chat completions server on 127.0.0.1 that answers every request after a fixed delay,
as a remote LLM endpoint does: the bench measures how far concurrent answering overlaps that latency.

The answer is a function of the question alone (a yes/no/maybe label, sure of itself, and the question's
first words), with token log-probabilities in the OpenAI shape, so the agent's confidence edges run and
every run at any concurrency must produce the same answers.

    .venv/bin/python bench/fixed_delay_server.py --delay 1.0   # prints the API root, serves until Ctrl-C
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LABELS = ("Yes", "No", "Maybe")
QUESTION = re.compile(r"<question>(.*?)</question>", re.DOTALL)  # processing/agent/prompts/answer.txt
MODEL = "fixed-delay"


def _token(text: str, logprob: float, alternatives: list[tuple[str, float]]) -> dict[str, Any]:
    top = [{"token": t, "logprob": p, "bytes": list(t.encode())} for t, p in alternatives]
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": top}


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """The deterministic answer to one chat completion request."""
    prompt = body["messages"][-1]["content"]
    question = match[1].strip() if (match := QUESTION.search(prompt)) else prompt
    label = LABELS[hashlib.sha256(question.encode()).digest()[0] % len(LABELS)]
    rest = " " + " ".join(question.split()[:8])
    others = [(other, -6.0) for other in LABELS if other != label]
    content = [_token(label, -0.01, [(label, -0.01), *others]), _token(".", -0.05, [(".", -0.05)])]
    content.append(_token(rest, -0.2, [(rest, -0.2)]))
    message = {"role": "assistant", "content": label + "." + rest}
    choice = {"index": 0, "message": message, "logprobs": {"content": content}, "finish_reason": "stop"}
    usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(content)}
    return {"id": "fixed", "object": "chat.completion", "model": MODEL, "choices": [choice], "usage": usage}


class FixedDelayServer(ThreadingHTTPServer):
    """One thread per request, so `delay_s` overlaps across concurrent requests as on a real endpoint."""

    daemon_threads = True

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FixedDelayServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.server.delay_s)
        encoded = json.dumps(completion(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, *args: object) -> None:  # one line per request would drown the bench output
        pass


@contextmanager
def serving(delay_s: float) -> Iterator[FixedDelayServer]:
    server = FixedDelayServer(delay_s)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before every answer")
    args = parser.parse_args()
    with serving(args.delay) as server:
        print(server.base_url, flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
