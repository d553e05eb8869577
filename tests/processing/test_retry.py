"""Retry settings are bounded and non-negative; retry behaviour itself is tested through each client."""

from __future__ import annotations

import pytest

from processing.retry import RetryPolicy


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"initial_delay_s": -1.0}, "delays"),
        ({"initial_delay_s": 5.0, "max_delay_s": 1.0}, "delays"),
    ],
)
def test_retry_policy_rejects_unbounded_or_negative_settings(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


def test_clients_the_pipeline_builds_make_one_attempt_so_the_policy_is_the_only_retry_layer():
    from processing.generators.aws import runtime_client
    from processing.retry import single_attempt

    assert single_attempt().retries == {"mode": "standard", "total_max_attempts": 1}
    client = runtime_client("sagemaker-runtime", "us-east-1")
    assert client.meta.config.retries["total_max_attempts"] == 1
