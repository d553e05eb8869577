"""Bounded exponential backoff with full jitter for AWS calls botocore does not retry by itself.

botocore never retries a SageMaker `ModelError` (the container's own 5xx) and its throttling retries have
no shared budget with ours, so clients built here run with botocore retries off and this loop owns them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

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


def is_transient_aws_error(error: Exception) -> bool:
    """True for throttling, 5xx, network errors, and model-container errors whose original status is 429/5xx."""
    if isinstance(error, ConnectionError | HTTPClientError):
        return True
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code", "")
    if code in ("ModelError", "ModelErrorException"):
        original = error.response.get("OriginalStatusCode")
        return isinstance(original, int) and (original == 429 or original >= 500)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500


@dataclass(frozen=True)
class Backoff:
    """Retry policy: at most `max_attempts` calls, sleeping uniform(0, min(max_delay, base_delay * 2**n))."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def call(self, operation: Callable[[], T], retryable: Callable[[Exception], bool] = is_transient_aws_error) -> T:
        """Run `operation`; re-raise its error when it is not retryable or on the last attempt."""
        for attempt in range(self.max_attempts - 1):
            try:
                return operation()
            except Exception as error:
                if not retryable(error):
                    raise
                self.sleep(self.rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt)))
        return operation()
