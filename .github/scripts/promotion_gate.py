"""Deployment gate: wait for a SageMaker pipeline execution, then for the promotion record it produced.

botocore has no waiter for pipeline executions, so this polls `DescribePipelineExecution` within a bound.
A record counts only if its SSM parameter version is newer than the one read before the execution
started: a stale record from an earlier run never promotes. The record is printed as one `name=value`
line for `$GITHUB_OUTPUT`, so the workflow passes it on through job outputs and `env:`, never by
expanding it inside a script.

    python .github/scripts/promotion_gate.py version --parameter /ragops/dev/promoted-config
    python .github/scripts/promotion_gate.py await --execution-arn ARN --parameter NAME --after-version 3
    python .github/scripts/promotion_gate.py await --execution-arn ARN   # last environment: no record to pass on
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/[A-Za-z0-9-]+/execution/[a-z0-9]+")
RUNNING = {"Executing", "Stopping"}
FAILED = {"Failed", "Stopped"}


class GateError(RuntimeError):
    """The execution failed, timed out or produced no new promotion record."""


@dataclass(frozen=True)
class Bounds:
    execution_timeout_seconds: float
    record_timeout_seconds: float
    poll_seconds: float


def parameter_version(ssm: Any, name: str) -> int:
    """Current version of the record, 0 when none was ever written."""
    try:
        return int(ssm.get_parameter(Name=name)["Parameter"]["Version"])
    except ssm.exceptions.ParameterNotFound:
        return 0


def await_execution(
    sagemaker: Any, arn: str, bounds: Bounds, sleep: Callable[[float], None], clock: Callable[[], float]
) -> None:
    if not EXECUTION_ARN.fullmatch(arn):
        raise GateError(f"--execution-arn: '{arn}' is not a SageMaker pipeline execution ARN")
    deadline = clock() + bounds.execution_timeout_seconds
    while True:
        status = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]
        print(f"pipeline execution {arn}: {status}", file=sys.stderr)
        if status == "Succeeded":
            return
        if status in FAILED or status not in RUNNING:
            raise GateError(f"pipeline execution {arn} ended {status}")
        if clock() >= deadline:
            raise GateError(f"pipeline execution {arn} still {status} after {bounds.execution_timeout_seconds:.0f} s")
        sleep(bounds.poll_seconds)


def await_record(
    ssm: Any,
    name: str,
    after_version: int,
    bounds: Bounds,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> dict[str, Any]:
    """The record written after `after_version`; the promotion hook may run shortly after the execution ends."""
    deadline = clock() + bounds.record_timeout_seconds
    while parameter_version(ssm, name) <= after_version:
        if clock() >= deadline:
            raise GateError(
                f"no new promotion record at {name} (still version {after_version}): the evaluation did not promote"
            )
        sleep(bounds.poll_seconds)
    value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    try:
        record = json.loads(value)
    except json.JSONDecodeError as error:
        raise GateError(f"promotion record {name} is not JSON: {error}") from None
    if not isinstance(record, dict):
        raise GateError(f"promotion record {name} is not a JSON object")
    return record


def main(argv: list[str] | None = None, *, sagemaker: Any = None, ssm: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    version = commands.add_parser("version", help="print the record's current version as version=N")
    version.add_argument("--parameter", required=True)
    wait = commands.add_parser("await", help="wait for the execution and a newer record; print promoted-config=JSON")
    wait.add_argument("--execution-arn", required=True)
    wait.add_argument("--parameter", help="promotion record to wait for; omit for the last environment")
    wait.add_argument("--after-version", type=int, default=0)
    wait.add_argument("--timeout-minutes", type=float, default=240.0)
    wait.add_argument("--record-timeout-minutes", type=float, default=10.0)
    wait.add_argument("--poll-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)

    ssm = ssm or boto3.client("ssm")
    try:
        if args.command == "version":
            print(f"version={parameter_version(ssm, args.parameter)}")
            return 0
        bounds = Bounds(args.timeout_minutes * 60, args.record_timeout_minutes * 60, args.poll_seconds)
        await_execution(sagemaker or boto3.client("sagemaker"), args.execution_arn, bounds, time.sleep, time.monotonic)
        if args.parameter is None:
            return 0
        record = await_record(ssm, args.parameter, args.after_version, bounds, time.sleep, time.monotonic)
    except GateError as error:
        print(f"promotion gate: {error}", file=sys.stderr)
        return 1
    print(f"promoted-config={json.dumps(record, sort_keys=True, separators=(',', ':'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
