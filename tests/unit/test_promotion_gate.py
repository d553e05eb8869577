"""The deploy workflow's gate, against botocore's Stubber: bounded polling, stale records never promote."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("promotion_gate", ROOT / ".github/scripts/promotion_gate.py")
gate = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = gate  # dataclasses resolve their module by name
SPEC.loader.exec_module(gate)

ARN = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/ragops-dev-single/execution/a1b2c3d4e5f6"
NAME = "/ragops/dev/promoted-config"
RECORD = {"run_config": {"chunking_strategy": "recursive", "top_k": 5}, "metrics": {"mrr": 0.82}}


class FakeTime:
    """A clock that advances only when the gate sleeps, so bounds are tested without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def ssm():
    client = boto3.client("ssm", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def status(stubber: Stubber, value: str) -> None:
    stubber.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": value},
        {"PipelineExecutionArn": ARN},
    )


def parameter(stubber: Stubber, version: int, value: dict | str = RECORD) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    stubber.add_response(
        "get_parameter",
        {"Parameter": {"Name": NAME, "Type": "String", "Value": text, "Version": version}},
        {"Name": NAME},
    )


BOUNDS = gate.Bounds(execution_timeout_seconds=300, record_timeout_seconds=120, poll_seconds=60)


def test_polls_until_succeeded(sagemaker):
    client, stubber = sagemaker
    for value in ("Executing", "Executing", "Succeeded"):
        status(stubber, value)
    fake = FakeTime()
    gate.await_execution(client, ARN, BOUNDS, fake.sleep, fake.clock)
    assert fake.sleeps == [60, 60]


@pytest.mark.parametrize("final", ["Failed", "Stopped"])
def test_failed_or_stopped_execution_fails_the_gate(sagemaker, final):
    client, stubber = sagemaker
    status(stubber, "Executing")
    status(stubber, final)
    fake = FakeTime()
    with pytest.raises(gate.GateError, match=f"ended {final}"):
        gate.await_execution(client, ARN, BOUNDS, fake.sleep, fake.clock)


def test_polling_is_bounded(sagemaker):
    client, stubber = sagemaker
    for _ in range(6):
        status(stubber, "Executing")
    fake = FakeTime()
    with pytest.raises(gate.GateError, match="still Executing after 300 s"):
        gate.await_execution(client, ARN, BOUNDS, fake.sleep, fake.clock)
    assert len(fake.sleeps) == 5


def test_malformed_execution_arn_is_refused_before_any_call(sagemaker):
    client, _ = sagemaker
    with pytest.raises(gate.GateError, match="--execution-arn"):
        gate.await_execution(client, "ragops-dev-single; rm -rf /", BOUNDS, FakeTime().sleep, FakeTime().clock)


def test_record_must_be_newer_than_before_the_execution(ssm):
    client, stubber = ssm
    parameter(stubber, 3)  # still the old record: the promotion hook has not written yet
    parameter(stubber, 4)
    parameter(stubber, 4)
    fake = FakeTime()
    assert gate.await_record(client, NAME, 3, BOUNDS, fake.sleep, fake.clock) == RECORD
    assert fake.sleeps == [60]


def test_stale_record_never_promotes(ssm):
    client, stubber = ssm
    for _ in range(3):
        parameter(stubber, 3)
    fake = FakeTime()
    with pytest.raises(gate.GateError, match="did not promote"):
        gate.await_record(client, NAME, 3, BOUNDS, fake.sleep, fake.clock)


@pytest.mark.parametrize(("value", "message"), [("not json", "is not JSON"), ("[1, 2]", "not a JSON object")])
def test_malformed_record_is_refused(ssm, value, message):
    client, stubber = ssm
    parameter(stubber, 1, value)
    parameter(stubber, 1, value)
    with pytest.raises(gate.GateError, match=message):
        gate.await_record(client, NAME, 0, BOUNDS, FakeTime().sleep, FakeTime().clock)


def test_version_is_zero_before_any_record(ssm, capsys):
    client, stubber = ssm
    stubber.add_client_error("get_parameter", service_error_code="ParameterNotFound", http_status_code=400)
    assert gate.main(["version", "--parameter", NAME], ssm=client) == 0
    assert capsys.readouterr().out == "version=0\n"


def test_main_prints_one_output_line_with_the_compact_record(sagemaker, ssm, capsys):
    sm_client, sm_stubber = sagemaker
    ssm_client, ssm_stubber = ssm
    status(sm_stubber, "Succeeded")
    parameter(ssm_stubber, 2, {**RECORD, "note": "line one\nline two"})
    parameter(ssm_stubber, 2, {**RECORD, "note": "line one\nline two"})
    argv = ["await", "--execution-arn", ARN, "--parameter", NAME, "--after-version", "1"]
    assert gate.main(argv, sagemaker=sm_client, ssm=ssm_client) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    name, value = out.rstrip("\n").split("=", 1)
    assert name == "promoted-config"
    assert json.loads(value)["run_config"] == RECORD["run_config"]


def test_main_exits_non_zero_when_the_execution_fails(sagemaker, ssm, capsys):
    sm_client, sm_stubber = sagemaker
    ssm_client, _ = ssm
    status(sm_stubber, "Failed")
    argv = ["await", "--execution-arn", ARN, "--parameter", NAME, "--after-version", "1"]
    assert gate.main(argv, sagemaker=sm_client, ssm=ssm_client) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "ended Failed" in captured.err


def test_last_environment_waits_for_the_execution_only(sagemaker, ssm, capsys):
    sm_client, sm_stubber = sagemaker
    ssm_client, _ = ssm
    status(sm_stubber, "Succeeded")
    assert gate.main(["await", "--execution-arn", ARN], sagemaker=sm_client, ssm=ssm_client) == 0
    assert capsys.readouterr().out == ""
