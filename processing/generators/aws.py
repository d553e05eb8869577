"""One way to call a SageMaker or Bedrock runtime API: bounded retries on transient errors, clear failures."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from processing.generators.errors import GeneratorError, MalformedResponse
from processing.generators.retrying import RetryPolicy, call_with_retries

# Our RetryPolicy is the only retry layer: botocore's own retries would multiply the attempts and the wait.
SINGLE_ATTEMPT = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120, connect_timeout=10)


def runtime_client(service: str, region_name: str | None) -> Any:
    """A boto3 runtime client without SDK-level retries (credentials are only needed when it is called)."""
    return boto3.client(service, region_name=region_name, config=SINGLE_ATTEMPT)


def error_code(error: BaseException) -> str | None:
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def invoke_json(
    call: Callable[[], Mapping[str, Any]],
    *,
    backend: str,
    target: str,
    transient: Callable[[BaseException], bool],
    policy: RetryPolicy,
) -> Any:
    """Run an invoke call with retries and return its JSON body; every failure names the backend and target."""
    where = f"{backend} {target}"
    try:
        response = call_with_retries(call, policy=policy, retryable=transient, target=where)
    except NoCredentialsError:
        raise GeneratorError(f"{where}: no AWS credentials found; configure a profile or role to use it") from None
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        raise GeneratorError(f"{where}: {error_code(error)}: {message}") from error
    except BotoCoreError as error:
        raise GeneratorError(f"{where}: {error}") from error
    raw = response["Body"].read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedResponse(backend, "Body", f"not JSON ({error}): {raw[:200]!r}") from None
