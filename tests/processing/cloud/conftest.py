"""Shared helpers for cloud backend tests: stubbed boto3 clients and the credentials seen at start-up."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody

from processing.retry import RetryPolicy

# Captured at import (collection), before the suite-wide fixture strips AWS_* variables, so integration
# tests can tell whether the developer actually configured credentials.
STARTUP_AWS_ENVIRONMENT = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}


def fake_session(region: str = "us-east-1") -> boto3.Session:
    """A session with static test credentials; nothing it signs ever leaves the process."""
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)


def streaming_body(payload: Any) -> StreamingBody:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def retry(sleeps: list[float]) -> RetryPolicy:
    """Real retry policy with the sleeps recorded instead of slept."""
    return RetryPolicy(max_attempts=4, initial_delay_s=0.5, max_delay_s=4.0, sleep=sleeps.append)


@pytest.fixture
def no_instance_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's credential chain from probing EC2/ECS metadata endpoints."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def restored_aws_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """For integration tests: put back the AWS_* variables the developer started pytest with."""
    for name, value in STARTUP_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        if name not in STARTUP_AWS_ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)
    return STARTUP_AWS_ENVIRONMENT
