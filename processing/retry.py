"""Bounded retries with exponential backoff and full jitter, for every service call the pipeline makes.

Clients built by the pipeline run with botocore's own retries off (one attempt), so this is the only retry
layer: attempts and waits do not multiply, and SageMaker `ModelError`s (which botocore never retries) are
retried when the container itself said 429/5xx.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

T = TypeVar("T")

# Error codes that mean "try again later" across sagemaker-runtime and bedrock-runtime.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ModelNotReadyException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerException",
        "InternalDependencyException",
    }
)


def single_attempt(read_timeout: float = 60.0) -> Config:
    """botocore client config with its own retries off, so this module's policy is the only retry layer."""
    return Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=read_timeout, connect_timeout=10)


def error_code(error: BaseException) -> str | None:
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def is_transient_aws_error(error: BaseException) -> bool:
    """True for throttling, 5xx, network errors, and model-container errors whose original status is 429/5xx."""
    if isinstance(error, ConnectionError | HTTPClientError):
        return True
    if not isinstance(error, ClientError):
        return False
    code = error_code(error) or ""
    if code in ("ModelError", "ModelErrorException"):
        original = error.response.get("OriginalStatusCode")
        return isinstance(original, int) and (original == 429 or original >= 500)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` calls; waits are random in [0, min(max_delay_s, initial_delay_s * 2**n)]."""

    max_attempts: int = 5
    initial_delay_s: float = 1.0
    max_delay_s: float = 20.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_delay_s < 0 or self.max_delay_s < self.initial_delay_s:
            raise ValueError("delays must satisfy 0 <= initial_delay_s <= max_delay_s")


def call_with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool],
    target: str,
    error_type: type[Exception],
) -> T:
    """Run `call`, retrying only errors `retryable` accepts; other errors propagate at once.

    When every attempt was retryable and failed, raises `error_type` naming `target` and the last cause.
    """
    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait_random_exponential(multiplier=policy.initial_delay_s, max=policy.max_delay_s),
        retry=retry_if_exception(retryable),
        sleep=policy.sleep,
    )
    try:
        return retrying(call)
    except RetryError as exhausted:
        cause = exhausted.last_attempt.exception()
        raise error_type(f"{target}: still failing after {policy.max_attempts} attempts: {cause}") from cause
