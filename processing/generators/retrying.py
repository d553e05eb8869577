"""Bounded retries with exponential backoff and full jitter for throttled or briefly unavailable services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from processing.generators.errors import GeneratorError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` calls; waits are random in [0, min(max_delay_s, initial_delay_s * 2**n)]."""

    max_attempts: int = 5
    initial_delay_s: float = 1.0
    max_delay_s: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_delay_s < 0 or self.max_delay_s < self.initial_delay_s:
            raise ValueError("delays must satisfy 0 <= initial_delay_s <= max_delay_s")


def call_with_retries(
    call: Callable[[], T], *, policy: RetryPolicy, retryable: Callable[[BaseException], bool], target: str
) -> T:
    """Run `call`, retrying only errors `retryable` accepts; other errors propagate at once.

    When every attempt was retryable and failed, raises GeneratorError naming `target` and the last cause.
    """
    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait_random_exponential(multiplier=policy.initial_delay_s, max=policy.max_delay_s),
        retry=retry_if_exception(retryable),
    )
    try:
        return retrying(call)
    except RetryError as exhausted:
        cause = exhausted.last_attempt.exception()
        raise GeneratorError(f"{target}: still failing after {policy.max_attempts} attempts: {cause}") from cause
