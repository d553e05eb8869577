"""Clean-up: stop paying for what experiments leave behind, and for everything running when the stack goes away.

Acts only on SageMaker resources tagged `ragops:project=ragops` and `ragops:environment=<this environment>`
(found with the Resource Groups Tagging API, re-checked before acting), and deletes only those whose
`ragops:created-by` names the run-time code that created them (inventory.CREATORS). That code creates endpoints
only, on a stack's endpoint config, so the hook deletes endpoints and stops pipeline executions; a stack's own
resources carry no creator tag and are never touched, and the stack deletes its own configs and models. Modes:
- `scheduled`: endpoints idle (no invocations) for the idle TTL, pipeline executions running past their TTL.
- `delete`: every runtime endpoint and running execution of this environment's pipelines; endpoints still
  creating or updating are deleted once SageMaker allows it.
`dry_run` reports what would happen without acting. The report lists every resource considered.

On stack delete the CDK provider framework calls this function twice over: on-event, then is-complete every
poll. On-event decides: only while the stack itself is DELETE_IN_PROGRESS does a Delete tear the environment
down (a failed create rolling back, or the resource replaced or renamed in an update, deletes nothing). Each
is-complete call runs a `delete` pass and answers complete once no endpoint of the environment exists and no
execution is executing or stopping; a failure, or the deadline passing, fails the delete naming what still bills.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from cleaner import Cleaner
from hookkit import (
    WaitingError,
    client,
    deadline_of,
    describe,
    is_complete_call,
    observed,
    settings_from_environ,
    waiting,
)
from inventory import Clients
from pydantic import BaseModel, ConfigDict, Field

SERVICE = "ragops-cleanup"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="RagOps", service=SERVICE)
# Report action -> metric, emitted by every pass (zeros included). A pass records a failed read or action and goes
# on, so it returns normally; the operations stack alarms on `CleanupFailed` instead.
ACTION_METRICS = {"delete": "CleanupDeleted", "stop": "CleanupStopped", "failed": "CleanupFailed"}

STACK_DELETING = "DELETE_IN_PROGRESS"
QUIET_ACTIONS = {"skip", "wait"}  # a pass with only these notifies nobody: polls would repeat them


class CleanupError(ValueError):
    """Bad event or configuration; nothing has been done when it is raised."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{1,15}$")
    endpoint_idle_ttl_hours: int = Field(gt=0)
    pipeline_execution_ttl_hours: int = Field(gt=0)
    dry_run: bool
    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:")
    delete_wait_minutes: int = Field(gt=0, lt=60)  # CloudFormation gives a custom resource one hour

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return settings_from_environ(cls, list(cls.model_fields), environ, CleanupError)


class RunRequest(BaseModel):
    """A scheduled or manual run: `{"mode": "scheduled", "dry_run": true}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["scheduled", "delete"] = "scheduled"
    dry_run: bool | None = None


class StackEvent(BaseModel):
    """The CloudFormation request the custom-resource provider framework forwards (plus `Waiting` on is-complete,
    read by the shared waiting protocol)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    RequestType: Literal["Create", "Update", "Delete"]
    StackId: str | None = None
    PhysicalResourceId: str | None = None
    ResourceProperties: dict[str, Any] = {}


def _request(event: Any) -> RunRequest | StackEvent:
    if not isinstance(event, Mapping):
        raise CleanupError(f"event must be a JSON object, got {type(event).__name__}")
    try:
        return parse(event=dict(event), model=StackEvent if "RequestType" in event else RunRequest)
    except ValidationError as error:
        raise CleanupError(f"invalid event: {describe(error)}") from None


def _stack_status(clients: Clients, stack_id: str | None) -> str:
    """The status of the stack that sent the request: only its own deletion tears the environment down."""
    if not stack_id:
        raise CleanupError("invalid event: a Delete request names its stack (StackId)")
    (stack,) = clients.cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    return stack["StackStatus"]


def _notify(clients: Clients, settings: Settings, report: dict[str, Any]) -> None:
    if not set(report["counts"]) - QUIET_ACTIONS:
        return
    clients.sns.publish(
        TopicArn=settings.topic_arn,
        Subject=f"RagOps {settings.environment}: clean-up ({report['mode']}{', dry run' if report['dry_run'] else ''})",
        Message=json.dumps(report, indent=2, default=str),
    )


def _pass(settings: Settings, clients: Clients, mode: str, dry_run: bool, now: datetime) -> Cleaner:
    """One clean-up pass, logged and (when it acted) notified."""
    cleaner = Cleaner(
        settings.environment,
        clients,
        mode=mode,
        dry_run=dry_run,
        now=now,
        idle_ttl=timedelta(hours=settings.endpoint_idle_ttl_hours),
        execution_ttl=timedelta(hours=settings.pipeline_execution_ttl_hours),
    )
    report = cleaner.run().as_dict()
    logger.info("clean-up report", extra={"report": report, "still_billing": cleaner.pending})
    metrics.add_dimension(name="environment", value=settings.environment)
    for action, name in ACTION_METRICS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=report["counts"].get(action, 0))
    _notify(clients, settings, report)
    return cleaner


def _on_event(request: StackEvent, settings: Settings, clients: Clients, now: datetime) -> dict[str, Any]:
    """Decide whether this request waits for a teardown; the first is-complete call follows at once."""
    physical_id = request.PhysicalResourceId or f"ragops-{settings.environment}-cleanup-on-delete"
    wait = None
    if request.RequestType == "Delete":
        status = _stack_status(clients, request.StackId)
        if status != STACK_DELETING:
            logger.info("Delete outside the stack's own deletion: nothing deleted", extra={"stack_status": status})
        elif settings.dry_run:  # report what the teardown would do; nothing changes, so nothing to wait for
            _pass(settings, clients, "delete", True, now)
        else:
            wait = timedelta(minutes=settings.delete_wait_minutes)
    return waiting(physical_id, now, wait)


def _is_complete(deadline: datetime | None, settings: Settings, clients: Clients, now: datetime) -> dict[str, Any]:
    """Act again, then answer whether anything of the environment still runs; fail rather than leave it billing."""
    if deadline is None:
        return {"IsComplete": True}
    cleaner = _pass(settings, clients, "delete", False, now)
    failed = [f"{a.kind} {a.name}: {a.reason}" for a in cleaner.report.actions if a.action == "failed"]
    billing = "; still billing: " + ", ".join(cleaner.pending) if cleaner.pending else ""
    if failed:
        raise RuntimeError(f"clean-up failed for {len(failed)} resource(s): {'; '.join(failed)}{billing}")
    if not cleaner.pending:
        return {"IsComplete": True}
    if now >= deadline:
        raise RuntimeError(f"clean-up did not finish in {settings.delete_wait_minutes} minutes{billing}")
    return {"IsComplete": False}


def clean_up(event: Any, settings: Settings, clients: Clients, now: datetime) -> dict[str, Any]:
    """Run what the event asks for: a pass (its report), or a provider-framework on-event or is-complete call."""
    request = _request(event)
    if isinstance(request, StackEvent):
        if is_complete_call(event):
            try:
                deadline = deadline_of(event)
            except WaitingError as error:
                raise CleanupError(f"invalid event: {error}") from None
            return _is_complete(deadline, settings, clients, now)
        return _on_event(request, settings, clients, now)
    dry_run = settings.dry_run if request.dry_run is None else request.dry_run
    return _pass(settings, clients, request.mode, dry_run, now).report.as_dict()


def _clients() -> Clients:
    services = ("sagemaker", "resourcegroupstaggingapi", "cloudwatch", "sns", "cloudformation")
    return Clients(*(client(name) for name in services))


@observed(logger, tracer, metrics)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return clean_up(event, Settings.from_environ(os.environ), _clients(), datetime.now(UTC))
