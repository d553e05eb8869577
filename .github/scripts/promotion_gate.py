"""Deployment gate: wait for a SageMaker pipeline execution, then for the promotion decision of that execution.

botocore has no waiter for pipeline executions, so this polls `DescribePipelineExecution` within a bound.
The decision is looked up by identity, never by recency: the promotion hook logs every decision in
`/ragops/<env>/last-promotion-decision`, and the gate reads that parameter's history for the version written
after the run started whose `execution_arn` is the execution it waited for, and whose `git_sha` is the commit it
deployed. Another execution of the same environment (the other pipeline shape, a manual run) never passes for
it, and a rejected decision fails the gate with its reasons. The pointer is printed as one `name=value` line for
`$GITHUB_OUTPUT`, so the workflow passes it on through job outputs and `env:`, never by expanding it in a script.
The pointer holds no run config (Parameter Store's 4 KB would refuse a long one): the gate reads the decision
record it names, by version id, checks its sha256 and identity, and adds the record's `run_config` to what it prints.

Each wait is bounded below the deploy role's one-hour session; the workflow takes a fresh session between them.

    python .github/scripts/promotion_gate.py version --parameter /ragops/dev/last-promotion-decision
    python .github/scripts/promotion_gate.py execution --execution-arn ARN --timeout-minutes 50
    python .github/scripts/promotion_gate.py decision --execution-arn ARN --git-sha SHA \
        --parameter /ragops/dev/last-promotion-decision --after-version 3
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

# The promotion hook's own module: the gate accepts exactly the execution ARNs the hook does.
_SPEC = importlib.util.spec_from_file_location(
    "hookkit", Path(__file__).resolve().parents[2] / "lambda/shared/hookkit.py"
)
_HOOKKIT = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_HOOKKIT)  # type: ignore[union-attr]
EXECUTION_ARN = re.compile(_HOOKKIT.EXECUTION_ARN)
RECORD_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(promotions/[a-z0-9-]+/decisions/.+\.json)")
GIT_SHA = re.compile(r"[0-9a-f]{40}")
RUNNING = {"Executing", "Stopping"}
FAILED = {"Failed", "Stopped"}
# The deploy role's sessions last one hour (MaxSessionDuration); a wait must end, with room for its last calls.
SESSION_MINUTES = 60
MAX_WAIT_MINUTES = SESSION_MINUTES - 5


class GateError(RuntimeError):
    """The execution failed or timed out, or its decision is missing, a rejection, or for another commit."""


@dataclass(frozen=True)
class Wait:
    timeout_seconds: float
    poll_seconds: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def parameter_version(ssm: Any, name: str) -> int:
    """Current version of the parameter, 0 when none was ever written."""
    try:
        return int(ssm.get_parameter(Name=name)["Parameter"]["Version"])
    except ssm.exceptions.ParameterNotFound:
        return 0


def _check_arn(arn: str) -> None:
    if not EXECUTION_ARN.fullmatch(arn):
        raise GateError(f"--execution-arn: '{arn}' is not a SageMaker pipeline execution ARN")


def await_execution(sagemaker: Any, arn: str, wait: Wait) -> None:
    _check_arn(arn)
    deadline = wait.clock() + wait.timeout_seconds
    while True:
        status = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]
        print(f"pipeline execution {arn}: {status}", file=sys.stderr)
        if status == "Succeeded":
            return
        if status in FAILED or status not in RUNNING:
            raise GateError(f"pipeline execution {arn} ended {status}")
        if wait.clock() >= deadline:
            raise GateError(f"pipeline execution {arn} still {status} after {wait.timeout_seconds:.0f} s")
        wait.sleep(wait.poll_seconds)


def _decision_of(ssm: Any, name: str, arn: str, after_version: int) -> dict[str, Any] | None:
    """The decision for `arn` among the versions after `after_version`, None while there is none."""
    try:
        pages = ssm.get_paginator("get_parameter_history").paginate(Name=name)
        versions = [v for page in pages for v in page["Parameters"]]
    except ssm.exceptions.ParameterNotFound:
        return None
    if versions and after_version and min(v["Version"] for v in versions) > after_version + 1:
        raise GateError(f"{name}: versions after {after_version} are no longer all in the history (it keeps 100)")
    for version in sorted(versions, key=lambda v: v["Version"]):
        if version["Version"] <= after_version:
            continue
        try:
            value = json.loads(version["Value"])
        except json.JSONDecodeError as error:
            raise GateError(f"{name} version {version['Version']} is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise GateError(f"{name} version {version['Version']} is not a JSON object")
        if value.get("execution_arn") == arn:
            return value
    return None


def await_decision(ssm: Any, name: str, arn: str, git_sha: str, after_version: int, wait: Wait) -> dict[str, Any]:
    """The pointer the hook recorded for exactly this execution and commit, once it passed."""
    _check_arn(arn)
    if not GIT_SHA.fullmatch(git_sha):
        raise GateError(f"--git-sha: '{git_sha}' is not a 40-character commit id")
    deadline = wait.clock() + wait.timeout_seconds
    while (decision := _decision_of(ssm, name, arn, after_version)) is None:
        if wait.clock() >= deadline:
            raise GateError(f"no promotion decision for {arn} in {name} after version {after_version}")
        wait.sleep(wait.poll_seconds)
    if decision.get("decision") not in ("promoted", "released"):
        raise GateError(f"{arn} was {decision.get('decision')}: {decision.get('failures')}")
    if decision.get("git_sha") != git_sha:
        raise GateError(f"{arn} was decided for commit {decision.get('git_sha')}, not the deployed {git_sha}")
    return decision


def with_run_config(s3: Any, decision: dict[str, Any]) -> dict[str, Any]:
    """The decision plus the run config of the record it points to, once that record is proven to be the one
    decided: the version named, the sha256 recorded, the same execution and commit."""
    match = RECORD_URI.fullmatch(str(decision.get("record_s3_uri", "")))
    if not match or not decision.get("record_version_id") or not decision.get("record_sha256"):
        raise GateError(f"the decision of {decision.get('execution_arn')} names no decision record version")
    bucket, key = match.groups()
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=decision["record_version_id"])["Body"].read()
    if hashlib.sha256(body).hexdigest() != decision["record_sha256"]:
        raise GateError(f"{decision['record_s3_uri']}: the record's sha256 is not the one its decision names")
    record = json.loads(body)
    for field in ("execution_arn", "git_sha"):
        if record.get(field) != decision.get(field):
            raise GateError(f"{decision['record_s3_uri']}: {field} {record.get(field)!r} is not the decision's")
    if not isinstance(record.get("run_config"), dict):
        raise GateError(f"{decision['record_s3_uri']}: the record has no run_config object")
    return {**decision, "run_config": record["run_config"]}


def _minutes(text: str) -> float:
    value = float(text)
    if not 0 < value <= MAX_WAIT_MINUTES:
        raise argparse.ArgumentTypeError(
            f"{value:g} is not in (0, {MAX_WAIT_MINUTES}]: the deploy role's session lasts {SESSION_MINUTES} minutes"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    version = commands.add_parser("version", help="print the parameter's current version as version=N")
    version.add_argument("--parameter", required=True)
    execution = commands.add_parser("execution", help="wait until the execution succeeded")
    decision = commands.add_parser("decision", help="wait for this execution's decision; print promoted-config=JSON")
    for command, default in ((execution, 50.0), (decision, 10.0)):
        command.add_argument("--execution-arn", required=True)
        command.add_argument("--timeout-minutes", type=_minutes, default=default)
        command.add_argument("--poll-seconds", type=float, default=60.0)
    decision.add_argument("--parameter", required=True, help="the environment's decision log")
    decision.add_argument("--after-version", type=int, required=True)
    decision.add_argument("--git-sha", required=True, help="the commit this run deployed")
    return parser


def main(argv: list[str] | None = None, *, sagemaker: Any = None, ssm: Any = None, s3: Any = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "version":
            print(f"version={parameter_version(ssm or boto3.client('ssm'), args.parameter)}")
            return 0
        wait = Wait(args.timeout_minutes * 60, args.poll_seconds)
        if args.command == "execution":
            await_execution(sagemaker or boto3.client("sagemaker"), args.execution_arn, wait)
            return 0
        ssm = ssm or boto3.client("ssm")
        decision = await_decision(ssm, args.parameter, args.execution_arn, args.git_sha, args.after_version, wait)
        record = with_run_config(s3 or boto3.client("s3"), decision)
    except GateError as error:
        print(f"promotion gate: {error}", file=sys.stderr)
        return 1
    print(f"promoted-config={json.dumps(record, sort_keys=True, separators=(',', ':'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
