"""Recorded response payloads, written from each service's documented response shape."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from botocore.response import StreamingBody

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> Any:
    """A fresh copy of `payloads/<name>.json`, safe for a test to mutate."""
    return copy.deepcopy(json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8")))


def streaming_body(body: Any) -> StreamingBody:
    """A runtime API response body as botocore returns it; non-bytes bodies are JSON-encoded."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))
