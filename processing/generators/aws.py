"""One way to call a SageMaker or Bedrock runtime API: bounded retries on transient errors, clear failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.response import StreamingBody

from processing.generators.errors import GeneratorError, MalformedResponse
from processing.retry import RetryPolicy, call_with_retries, error_code, is_transient_aws_error, single_attempt


def runtime_client(service: str, region_name: str | None) -> Any:
    """A boto3 runtime client without SDK-level retries (credentials are only needed when it is called)."""
    return boto3.client(service, region_name=region_name, config=single_attempt(read_timeout=120))


def invoke_json(
    call: Callable[[], StreamingBody],
    *,
    backend: str,
    target: str,
    policy: RetryPolicy,
) -> Any:
    """Run an invoke call (returning the response body stream) with retries and decode its JSON.

    Every failure names the backend and target.
    """
    where = f"{backend} {target}"
    try:
        body = call_with_retries(
            call, policy=policy, retryable=is_transient_aws_error, target=where, error_type=GeneratorError
        )
    except NoCredentialsError:
        raise GeneratorError(f"{where}: no AWS credentials found; configure a profile or role to use it") from None
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        raise GeneratorError(f"{where}: {error_code(error)}: {message}") from error
    except BotoCoreError as error:
        raise GeneratorError(f"{where}: {error}") from error
    raw = body.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedResponse(backend, "Body", f"not JSON ({error}): {raw[:200]!r}") from None


def invoke_endpoint_json(client: Any, endpoint_name: str, body: Any, *, backend: str, policy: RetryPolicy) -> Any:
    """A SageMaker `invoke_endpoint` call with a JSON body, through `invoke_json`."""
    return invoke_json(
        lambda: client.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps(body),
        )["Body"],
        backend=backend,
        target=endpoint_name,
        policy=policy,
    )
