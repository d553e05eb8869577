"""The deploy workflow's gate, against botocore's Stubber: bounded polling, and the decision of exactly the
execution and commit it waited for (never another execution's, never a stale one)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import sys
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from tests.lambda_handlers import load_handler

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("promotion_gate", ROOT / ".github/scripts/promotion_gate.py")
gate = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = gate  # dataclasses resolve their module by name
SPEC.loader.exec_module(gate)

ARN = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/ragops-dev-single/execution/a1b2c3d4e5f6"
OTHER = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/ragops-dev-multi/execution/f6e5d4c3b2a1"
SHA = "0123456789abcdef0123456789abcdef01234567"
NAME = "/ragops/dev/last-promotion-decision"


RUN_CONFIG = {"chunking_strategy": "recursive", "top_k": 5}
BUCKET = "ragops-dev-data-111111111111-us-east-1"


def record_body(arn: str = ARN, git_sha: str = SHA, **extra) -> bytes:
    """A decision record as the hook stores it (compact, sorted JSON: the bytes its sha256 is taken of)."""
    record = {"execution_arn": arn, "git_sha": git_sha, "run_config": RUN_CONFIG, **extra}
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def decision(arn: str = ARN, verdict: str = "promoted", git_sha: str = SHA, **extra) -> dict:
    """The pointer the hook logs: no run config, the record's location, version and sha256."""
    return {
        "decision": verdict,
        "execution_arn": arn,
        "git_sha": git_sha,
        "record_s3_uri": f"s3://{BUCKET}/promotions/dev/decisions/ragops-dev-single/{arn.rsplit('/', 1)[1]}.json",
        "record_version_id": "v1",
        "record_sha256": hashlib.sha256(record_body(arn, git_sha)).hexdigest(),
        "failures": [] if verdict != "rejected" else ["mrr 0.5000 < 0.7000"],
        **extra,
    }


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

    def wait(self, timeout_seconds: float) -> object:
        return gate.Wait(timeout_seconds, 60, self.sleep, self.clock)


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def stored(stubber: Stubber, body: bytes, arn: str = ARN) -> None:
    key = f"promotions/dev/decisions/ragops-dev-single/{arn.rsplit('/', 1)[1]}.json"
    stubber.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(body), len(body))},
        {"Bucket": BUCKET, "Key": key, "VersionId": "v1"},
    )


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


def history(stubber: Stubber, *values: tuple[int, dict | str]) -> None:
    """One GetParameterHistory answer: (version, value) pairs."""
    parameters = [
        {"Name": NAME, "Type": "String", "Value": v if isinstance(v, str) else json.dumps(v), "Version": n}
        for n, v in values
    ]
    stubber.add_response("get_parameter_history", {"Parameters": parameters}, {"Name": NAME})


def test_polls_until_succeeded(sagemaker):
    client, stubber = sagemaker
    for value in ("Executing", "Executing", "Succeeded"):
        status(stubber, value)
    fake = FakeTime()
    gate.await_execution(client, ARN, fake.wait(300))
    assert fake.sleeps == [60, 60]


@pytest.mark.parametrize("final", ["Failed", "Stopped"])
def test_failed_or_stopped_execution_fails_the_gate(sagemaker, final):
    client, stubber = sagemaker
    status(stubber, "Executing")
    status(stubber, final)
    with pytest.raises(gate.GateError, match=f"ended {final}"):
        gate.await_execution(client, ARN, FakeTime().wait(300))


def test_polling_is_bounded(sagemaker):
    client, stubber = sagemaker
    for _ in range(6):
        status(stubber, "Executing")
    fake = FakeTime()
    with pytest.raises(gate.GateError, match="still Executing after 300 s"):
        gate.await_execution(client, ARN, fake.wait(300))
    assert len(fake.sleeps) == 5


def test_malformed_execution_arn_is_refused_before_any_call(sagemaker):
    client, _ = sagemaker
    with pytest.raises(gate.GateError, match="--execution-arn"):
        gate.await_execution(client, "ragops-dev-single; rm -rf /", FakeTime().wait(300))


def test_the_decision_of_the_awaited_execution_is_forwarded_not_the_newest(ssm):
    """Two executions in one environment: the other one decided last, the gate still forwards its own."""
    client, stubber = ssm
    history(stubber, (3, decision(OTHER)), (4, decision(ARN, run=1)), (5, decision(OTHER, run=2)))
    assert gate.await_decision(client, NAME, ARN, SHA, 3, FakeTime().wait(120)) == decision(ARN, run=1)


def test_another_executions_decision_never_passes_for_it(ssm):
    client, stubber = ssm
    for _ in range(3):
        history(stubber, (3, decision(ARN)), (4, decision(OTHER)))  # ARN's own decision is older than the run
    fake = FakeTime()
    with pytest.raises(gate.GateError, match=f"no promotion decision for {ARN}"):
        gate.await_decision(client, NAME, ARN, SHA, 3, fake.wait(120))
    assert fake.sleeps == [60, 60]


def test_the_gate_waits_for_the_hook_to_decide(ssm):
    client, stubber = ssm
    stubber.add_client_error("get_parameter_history", service_error_code="ParameterNotFound", http_status_code=400)
    history(stubber, (1, decision(ARN)))
    fake = FakeTime()
    assert gate.await_decision(client, NAME, ARN, SHA, 0, fake.wait(120))["execution_arn"] == ARN
    assert fake.sleeps == [60]


def test_a_rejected_execution_fails_the_gate_with_its_reasons(ssm):
    client, stubber = ssm
    history(stubber, (4, decision(ARN, "rejected")), (5, decision(OTHER)))
    with pytest.raises(gate.GateError, match=r"was rejected: \['mrr 0.5000 < 0.7000'\]"):
        gate.await_decision(client, NAME, ARN, SHA, 3, FakeTime().wait(120))


def test_a_decision_for_another_commit_fails_the_gate(ssm):
    client, stubber = ssm
    history(stubber, (4, decision(ARN, git_sha="f" * 40)))
    with pytest.raises(gate.GateError, match=f"for commit {'f' * 40}, not the deployed {SHA}"):
        gate.await_decision(client, NAME, ARN, SHA, 3, FakeTime().wait(120))


def test_versions_lost_from_the_history_are_not_guessed_at(ssm):
    client, stubber = ssm
    history(stubber, (105, decision(OTHER)))
    with pytest.raises(gate.GateError, match="no longer all in the history"):
        gate.await_decision(client, NAME, ARN, SHA, 3, FakeTime().wait(120))


@pytest.mark.parametrize(("value", "message"), [("not json", "is not JSON"), ("[1, 2]", "not a JSON object")])
def test_malformed_decision_is_refused(ssm, value, message):
    client, stubber = ssm
    history(stubber, (1, value))
    with pytest.raises(gate.GateError, match=message):
        gate.await_decision(client, NAME, ARN, SHA, 0, FakeTime().wait(120))


def test_version_is_zero_before_any_record(ssm, capsys):
    client, stubber = ssm
    stubber.add_client_error("get_parameter", service_error_code="ParameterNotFound", http_status_code=400)
    assert gate.main(["version", "--parameter", NAME], ssm=client) == 0
    assert capsys.readouterr().out == "version=0\n"


@pytest.mark.parametrize("command", ["execution", "decision"])
def test_a_wait_longer_than_the_deploy_session_is_refused(command, capsys):
    argv = [command, "--execution-arn", ARN, "--timeout-minutes", "60"]
    if command == "decision":
        argv += ["--parameter", NAME, "--after-version", "1", "--git-sha", SHA]
    with pytest.raises(SystemExit) as exited:
        gate.main(argv)
    assert exited.value.code == 2
    assert "session lasts 60 minutes" in capsys.readouterr().err


def test_main_prints_one_output_line_with_the_compact_decision_and_its_records_run_config(ssm, s3, capsys):
    client, stubber = ssm
    history(stubber, (2, decision(ARN, note="line one\nline two")))
    stored(s3[1], record_body())
    argv = ["decision", "--execution-arn", ARN, "--parameter", NAME, "--after-version", "1", "--git-sha", SHA]
    assert gate.main(argv, ssm=client, s3=s3[0]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    name, value = out.rstrip("\n").split("=", 1)
    assert name == "promoted-config"
    assert json.loads(value)["execution_arn"] == ARN
    assert json.loads(value)["run_config"] == RUN_CONFIG


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (record_body(run_config={"top_k": 50}), "sha256 is not the one its decision names"),
        (record_body(OTHER), "sha256 is not the one"),
    ],
)
def test_a_record_that_is_not_the_one_decided_is_refused(s3, body, message):
    client, stubber = s3
    stored(stubber, body)
    with pytest.raises(gate.GateError, match=message):
        gate.with_run_config(client, decision())


def test_a_record_of_another_execution_is_refused_even_with_a_matching_hash(s3):
    client, stubber = s3
    body = record_body(OTHER)
    stored(stubber, body)
    forged = {**decision(), "record_sha256": hashlib.sha256(body).hexdigest()}
    with pytest.raises(gate.GateError, match=r"execution_arn .* is not the decision's"):
        gate.with_run_config(client, forged)


def test_the_gate_and_the_hook_accept_exactly_the_same_execution_arns():
    load_handler("promotion")
    hook = sys.modules["inputs"].EXECUTION_ARN
    assert gate.EXECUTION_ARN.pattern == hook
    upper = ARN.replace("ragops-dev-single", "RagOps-Dev")
    assert re.fullmatch(hook, upper) is None
    assert gate.EXECUTION_ARN.fullmatch(upper) is None


def test_main_exits_non_zero_when_the_execution_fails(sagemaker, capsys):
    client, stubber = sagemaker
    status(stubber, "Failed")
    assert gate.main(["execution", "--execution-arn", ARN], sagemaker=client) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "ended Failed" in captured.err


def test_main_waits_for_the_execution_only_and_prints_nothing(sagemaker, capsys):
    client, stubber = sagemaker
    status(stubber, "Succeeded")
    assert gate.main(["execution", "--execution-arn", ARN], sagemaker=client) == 0
    assert capsys.readouterr().out == ""
