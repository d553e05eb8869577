"""One clean-up pass over this environment's SageMaker resources: decide per resource, act, record every decision.

Reads are guarded like the actions: a resource that cannot be read is recorded as `failed` and the pass goes on
with the others, so one throttled describe costs one resource, not the run (a stack delete still fails on it).
A `delete` pass also lists what still bills afterwards (`pending`): endpoints that exist in any state, Deleting
included, and executions executing or stopping; the stack-delete waiter repeats passes until that list is empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from inventory import Clients, Report, TagMap, find_tagged

# SageMaker refuses DeleteEndpoint while one of these runs; a delete pass waits, and deletes the endpoint later.
BUSY_ENDPOINT_STATES = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
# A scheduled pass leaves these alone: in progress, or (UpdateRollbackFailed) serving and needing a person.
TRANSITIONAL_ENDPOINT_STATES = BUSY_ENDPOINT_STATES | {"Deleting", "UpdateRollbackFailed"}

T = TypeVar("T")
# What DescribeEndpoint and DeleteEndpoint answer for an endpoint that no longer exists: botocore's sagemaker
# 2017-07-24 model declares no error for either, and SageMaker answers ValidationException "Could not find
# endpoint ..." (a real DeleteEndpoint answer is quoted in aws/amazon-sagemaker-examples issue 2402; moto
# reproduces the message). Deleted between list and describe or delete, it is gone, not failed.
GONE = "gone"
NOT_FOUND = "Could not find endpoint"


def _gone(error: Exception) -> bool:
    return _error_code(error) == "ValidationException" and NOT_FOUND in str(error)


def _error_code(error: Exception) -> str:
    return error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__


class Cleaner:
    """One pass: decides per resource, acts unless dry run, records every decision."""

    def __init__(
        self,
        environment: str,
        clients: Clients,
        *,
        mode: str,
        dry_run: bool,
        now: datetime,
        idle_ttl: timedelta,
        execution_ttl: timedelta,
    ) -> None:
        self.environment = environment
        self.clients = clients
        self.mode = mode
        self.now = now
        self.report = Report(environment, mode, dry_run)
        self.idle_ttl = idle_ttl
        self.execution_ttl = execution_ttl
        self.pending: list[str] = []  # delete mode: what still bills after this pass, as "<kind> <name> (<state>)"

    def run(self) -> Report:
        tagging = self.clients.tagging
        tagged = self._read("tagging", "*", "get_resources", lambda: find_tagged(tagging, self.environment))
        if tagged is None:
            return self.report
        self._endpoints(tagged.of("sagemaker:endpoint"))
        self._pipeline_executions(tagged.of("sagemaker:pipeline"))
        return self.report

    # -- reads and actions, each recorded ----------------------------------------------------------------

    def _read(self, kind: str, name: str, what: str, call: Callable[[], T]) -> T | None:
        """`call()`, or None after recording the failure: the pass continues with the other resources."""
        try:
            return call()
        except (ClientError, BotoCoreError) as error:
            self.report.add(kind, name, "failed", f"{what}: {_error_code(error)}")
            return None

    def _list(self, kind: str, name: str, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]] | None:
        def pages() -> list[dict[str, Any]]:
            paginator = self.clients.sagemaker.get_paginator(operation)
            return [item for page in paginator.paginate(**kwargs) for item in page[key]]

        return self._read(kind, name, operation, pages)

    def _describe(self, name: str) -> dict[str, Any]:
        """The endpoint's description, {} when it is gone since it was listed (it serves nothing)."""
        try:
            return self.clients.sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if _gone(error):
                return {}
            raise

    def _act(self, kind: str, name: str, verb: str, reason: str, call: Callable[[], Any]) -> bool:
        """Perform `call` (unless dry run) and record it; True when the resource is (or would be) gone."""
        if self.report.dry_run:
            self.report.add(kind, name, f"would-{verb}", reason)
            return True
        try:
            call()
        except (ClientError, BotoCoreError) as error:
            self.report.add(kind, name, "failed", f"{verb}: {_error_code(error)}: {reason}")
            return False
        self.report.add(kind, name, verb, reason)
        return True

    def _still_there(self, kind: str, name: str, state: str, reason: str | None = None) -> None:
        """Record something that still bills after this delete pass (and, with a reason, why it is waited for)."""
        if reason:
            self.report.add(kind, name, "wait", reason)
        self.pending.append(f"{kind} {name} ({state})")

    # -- resources -------------------------------------------------------------------------------------

    def _endpoints(self, tagged: TagMap) -> None:
        summaries = self._list("endpoint", "*", "list_endpoints", "Endpoints") if tagged else []
        for summary in summaries or []:
            arn, name = summary["EndpointArn"].lower(), summary["EndpointName"]
            if arn not in tagged:  # only what our own code created at run time (inventory.CREATORS)
                continue
            status = summary["EndpointStatus"]
            if self.mode == "delete":
                if status == "Deleting":
                    self._still_there("endpoint", name, status, "SageMaker is deleting it")
                    continue
                if status in BUSY_ENDPOINT_STATES:
                    self._still_there("endpoint", name, status, f"status {status}: deleted once SageMaker allows it")
                    continue
                reason = "environment stack is being deleted"
            elif status in TRANSITIONAL_ENDPOINT_STATES:
                self.report.add("endpoint", name, "skip", f"status {status}")
                continue
            else:
                age = self.now - summary["CreationTime"]
                if age < self.idle_ttl:
                    self.report.add("endpoint", name, "skip", f"younger than the idle TTL ({age} old)")
                    continue
                invocations = self._invocations(name)
                if invocations is None:  # the failed read is recorded
                    continue
                if invocations:
                    self.report.add(
                        "endpoint", name, "skip", f"{invocations:.0f} invocations in the last {self.idle_ttl}"
                    )
                    continue
                reason = f"no invocations in the last {self.idle_ttl}"
            if self.mode == "delete" and not self.report.dry_run:
                self._delete_for_teardown(name, status, reason)
                continue
            call = lambda n=name: self.clients.sagemaker.delete_endpoint(EndpointName=n)  # noqa: E731
            deleted = self._act("endpoint", name, "delete", reason, call)
            if self.mode == "delete":  # a dry run: what a teardown would leave deleting
                self._still_there("endpoint", name, "Deleting" if deleted else status)

    def _delete_for_teardown(self, name: str, listed: str, reason: str) -> None:
        """Delete, or wait for an endpoint whose state changed since it was listed: auto scaling may have moved it
        to Updating, and SageMaker refuses DeleteEndpoint until that ends. The next is-complete pass deletes it."""
        try:
            self.clients.sagemaker.delete_endpoint(EndpointName=name)
        except (ClientError, BotoCoreError) as error:
            # Whatever the refusal's code, the endpoint's state now says whether to wait: one describe per refusal.
            now = self._status_now(name) if isinstance(error, ClientError) else None
            if now == GONE:
                self.report.add("endpoint", name, "skip", "gone: deleted since it was listed")
            elif now in BUSY_ENDPOINT_STATES or now == "Deleting":
                self._still_there("endpoint", name, now, f"status {now} since it was listed: deleted once it ends")
            else:
                self.report.add("endpoint", name, "failed", f"delete: {_error_code(error)}: {reason}")
                self._still_there("endpoint", name, listed)
            return
        self.report.add("endpoint", name, "delete", reason)
        self._still_there("endpoint", name, "Deleting")  # deleting takes minutes

    def _status_now(self, name: str) -> str | None:
        """The endpoint's status read again (GONE if it no longer exists), None when it cannot be read."""
        try:
            return self.clients.sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
        except ClientError as error:
            return GONE if _gone(error) else None

    def _invocations(self, endpoint: str) -> float | None:
        """Invocations over the idle TTL summed over the variants; None when a read failed or the endpoint is gone
        (either is recorded)."""
        described = self._read("endpoint", endpoint, "describe_endpoint", lambda: self._describe(endpoint))
        if described is None:
            return None
        if not described:
            self.report.add("endpoint", endpoint, "skip", "gone: deleted since it was listed")
            return None
        total = 0.0
        for variant in described.get("ProductionVariants", []):
            statistics = self._read(
                "endpoint",
                endpoint,
                "get_metric_statistics",
                lambda v=variant["VariantName"]: self.clients.cloudwatch.get_metric_statistics(
                    Namespace="AWS/SageMaker",
                    MetricName="Invocations",
                    Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": v}],
                    StartTime=self.now - self.idle_ttl,
                    EndTime=self.now,
                    Period=int(self.idle_ttl.total_seconds()),
                    Statistics=["Sum"],
                ),
            )
            if statistics is None:
                return None
            total += sum(p["Sum"] for p in statistics["Datapoints"])
        return total

    def _pipeline_executions(self, tagged: TagMap) -> None:
        pipelines = self._list("pipeline", "*", "list_pipelines", "PipelineSummaries") if tagged else []
        for pipeline in pipelines or []:
            if pipeline["PipelineArn"].lower() not in tagged:
                continue
            name = pipeline["PipelineName"]
            executions = self._list(
                "pipeline", name, "list_pipeline_executions", "PipelineExecutionSummaries", PipelineName=name
            )
            for execution in executions or []:
                status, arn = execution.get("PipelineExecutionStatus"), execution["PipelineExecutionArn"]
                if self.mode == "delete" and status == "Stopping":
                    self._still_there("pipeline-execution", arn, status, "stopping: its running step finishes first")
                    continue
                if status != "Executing":
                    continue
                if self.mode == "delete":
                    reason = "environment stack is being deleted"
                else:
                    running = self.now - execution["StartTime"]
                    if running < self.execution_ttl:
                        self.report.add("pipeline-execution", arn, "skip", f"running for {running}, within the TTL")
                        continue
                    reason = f"running for {running}, longer than {self.execution_ttl}"
                token = hashlib.sha256(arn.encode()).hexdigest()[:64]  # stable: a retried stop is idempotent
                call = lambda a=arn, t=token: self.clients.sagemaker.stop_pipeline_execution(  # noqa: E731
                    PipelineExecutionArn=a, ClientRequestToken=t
                )
                stopped = self._act("pipeline-execution", arn, "stop", reason, call)
                if self.mode == "delete":
                    self._still_there("pipeline-execution", arn, "Stopping" if stopped else status)
