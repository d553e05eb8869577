"""What every hook function shares: settings from the environment, AWS clients, the handler's decorators, the
custom-resource waiting protocol and the identifiers the hooks and the deploy gate agree on.

Copied next to each function's `handler.py` at synth (stacks/hooks.py), so each function imports it as a top-level
module. It imports only the standard library and botocore at load time: the interface drain runs without the
Powertools layer, so pydantic is imported only by the callers that have it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, TypeVar

import boto3
from botocore.config import Config

# One pattern for a SageMaker pipeline execution ARN, in the hooks and in the deploy gate (which loads this file):
# pipeline names are lower case as this project creates them; execution ids are SageMaker's lower-case ids.
EXECUTION_ARN = r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/([a-z0-9-]+)/execution/([a-z0-9]+)$"

# Bounded retries of transient errors (throttling, 5xx, S3 SlowDown, connection errors) inside the handler:
# botocore's "standard" mode retries exactly those, with exponential backoff, at most `total_max_attempts` calls.
# Hook timeouts are one minute (promotion) and ten (clean-up): five attempts with backoff capped at 20 s fit.
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=20)

E = TypeVar("E", bound=Exception)
M = TypeVar("M")


def settings_from_environ(
    model: Callable[..., M],
    fields: Sequence[str],
    environ: Mapping[str, str],
    error: type[E],
    json_fields: Sequence[str] = (),
) -> M:
    """`model(**values)` from `RAGOPS_<FIELD>` variables; every refusal is `error` naming the variable."""
    from pydantic import ValidationError  # the callers run with the Powertools layer, which ships pydantic

    names = {field: f"RAGOPS_{field.upper()}" for field in fields}
    values: dict[str, Any] = {field: environ.get(var) or None for field, var in names.items()}
    for field in json_fields:
        try:
            values[field] = json.loads(values[field] or "null")
        except json.JSONDecodeError as decode_error:
            raise error(f"configuration: environment variable {names[field]} is not JSON: {decode_error}") from None
    try:
        return model(**values)
    except ValidationError as invalid:
        raise error("configuration: " + describe(invalid, names)) from None


def describe(error: Any, names: Mapping[str, str] | None = None) -> str:
    """A pydantic ValidationError as `where: what; ...`, a field set from the environment named by its variable."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        if names and where in names:
            where = f"environment variable {names[where]}"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


@cache
def client(service: str) -> Any:
    """One client per service for the life of the execution environment, with bounded retries."""
    return boto3.client(service, config=RETRIES)


def observed(logger: Any, tracer: Any, metrics: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Powertools' decorator stack: metrics flushed last (also on failure), the event logged, the call traced."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        return metrics.log_metrics(logger.inject_lambda_context(log_event=True)(tracer.capture_lambda_handler(handler)))

    return wrap


# -- the custom-resource provider framework's is-complete protocol ------------------------------------------------
# On-event answers {"PhysicalResourceId", "Waiting": {"deadline": ISO-8601 | null}}; the framework passes the answer's
# fields along in every is-complete event, which answers {"IsComplete": bool}.


class WaitingError(ValueError):
    """An is-complete event whose `Waiting` field is not what on-event answered."""


def waiting(physical_id: str, now: datetime, wait: timedelta | None) -> dict[str, Any]:
    """On-event's answer: wait until `now + wait`, or not at all when `wait` is None."""
    deadline = None if wait is None else (now + wait).isoformat()
    return {"PhysicalResourceId": physical_id, "Waiting": {"deadline": deadline}}


def is_complete_call(event: Mapping[str, Any]) -> bool:
    return "Waiting" in event


def deadline_of(event: Mapping[str, Any]) -> datetime | None:
    """The deadline on-event set (None: nothing to wait for); a malformed one is refused by name."""
    state = event.get("Waiting")
    if not isinstance(state, Mapping) or set(state) != {"deadline"}:
        raise WaitingError(f"Waiting: expected {{'deadline': ISO-8601 or null}}, got {state!r}")
    value = state["deadline"]
    if value is None:
        return None
    try:
        deadline = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        deadline = None
    if deadline is None or deadline.tzinfo is None:
        raise WaitingError(f"Waiting.deadline: expected an ISO-8601 time with its offset, got {value!r}")
    return deadline
