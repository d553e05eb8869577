"""Clean-up: stop paying for what experiments leave behind, and for everything running when the stack goes away.

Acts only on SageMaker resources tagged `ragops:project=ragops` and `ragops:environment=<this environment>`
(found with the Resource Groups Tagging API, re-checked before acting). Resources owned by CloudFormation (tag
`aws:cloudformation:stack-name`) are never touched: their stacks delete them. Modes:
- `scheduled`: endpoints idle (no invocations) for the idle TTL, endpoint configs and models no endpoint uses
  (older than the idle TTL, so a deployment in progress keeps them), pipeline executions running past their TTL.
- `delete` (the custom resource's Delete, only while the stack itself is DELETE_IN_PROGRESS): every runtime
  endpoint, orphaned config and model, and running execution of this environment's pipelines. A Delete in any
  other stack state (a failed create rolling back, a resource replaced or renamed in an update) deletes nothing.
`dry_run` reports what would happen without acting. The report lists every resource considered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from cleaner import Cleaner
from inventory import Clients
from pydantic import BaseModel, ConfigDict, Field

logger = Logger(service="ragops-cleanup")
tracer = Tracer(service="ragops-cleanup")

STACK_DELETING = "DELETE_IN_PROGRESS"


class CleanupError(ValueError):
    """Bad event or configuration; nothing has been done when it is raised."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{1,15}$")
    endpoint_idle_ttl_hours: int = Field(gt=0)
    pipeline_execution_ttl_hours: int = Field(gt=0)
    dry_run: bool
    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        names = {
            "environment": "RAGOPS_ENVIRONMENT",
            "endpoint_idle_ttl_hours": "RAGOPS_ENDPOINT_IDLE_TTL_HOURS",
            "pipeline_execution_ttl_hours": "RAGOPS_PIPELINE_EXECUTION_TTL_HOURS",
            "dry_run": "RAGOPS_DRY_RUN",
            "topic_arn": "RAGOPS_TOPIC_ARN",
        }
        try:
            return cls(**{name: environ.get(var) for name, var in names.items()})
        except ValidationError as error:
            raise CleanupError(
                "configuration: "
                + "; ".join(f"environment variable {names[str(e['loc'][0])]}: {e['msg']}" for e in error.errors())
            ) from None


class RunRequest(BaseModel):
    """A scheduled or manual run: `{"mode": "scheduled", "dry_run": true}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["scheduled", "delete"] = "scheduled"
    dry_run: bool | None = None


class StackEvent(BaseModel):
    """The CloudFormation request the custom-resource provider framework forwards."""

    model_config = ConfigDict(extra="allow", frozen=True)

    RequestType: Literal["Create", "Update", "Delete"]
    StackId: str | None = None
    PhysicalResourceId: str | None = None
    ResourceProperties: dict[str, Any] = {}


def _request(event: Any, settings: Settings) -> tuple[str, bool, StackEvent | None]:
    """(mode, dry_run, stack event or None) from a scheduled/manual run or a custom-resource request."""
    if not isinstance(event, Mapping):
        raise CleanupError(f"event must be a JSON object, got {type(event).__name__}")
    try:
        if "RequestType" in event:
            stack_event = parse(event=dict(event), model=StackEvent)
            return ("delete" if stack_event.RequestType == "Delete" else "none"), settings.dry_run, stack_event
        run = parse(event=dict(event), model=RunRequest)
    except ValidationError as error:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in error.errors())
        raise CleanupError(f"invalid event: {details}") from None
    return run.mode, settings.dry_run if run.dry_run is None else run.dry_run, None


def _stack_status(clients: Clients, stack_id: str | None) -> str:
    """The status of the stack that sent the request: only its own deletion tears the environment down."""
    if not stack_id:
        raise CleanupError("invalid event: a Delete request names its stack (StackId)")
    (stack,) = clients.cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    return stack["StackStatus"]


def _notify(clients: Clients, settings: Settings, report: dict[str, Any]) -> None:
    acted = {k: v for k, v in report["counts"].items() if k != "skip"}
    if not acted:
        return
    clients.sns.publish(
        TopicArn=settings.topic_arn,
        Subject=f"RagOps {settings.environment}: clean-up ({report['mode']}{', dry run' if report['dry_run'] else ''})",
        Message=json.dumps(report, indent=2, default=str),
    )


def clean_up(event: Any, settings: Settings, clients: Clients, now: datetime) -> dict[str, Any]:
    """Run the clean-up the event asks for and return its report (a provider response for stack events)."""
    mode, dry_run, stack_event = _request(event, settings)
    physical_id = f"ragops-{settings.environment}-cleanup-on-delete"
    if mode == "none":  # custom resource Create/Update: nothing to clean yet
        return {"PhysicalResourceId": physical_id}
    if stack_event is not None and (status := _stack_status(clients, stack_event.StackId)) != STACK_DELETING:
        logger.info("Delete outside the stack's own deletion: nothing deleted", extra={"stack_status": status})
        return {"PhysicalResourceId": stack_event.PhysicalResourceId or physical_id}
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
    logger.info("clean-up report", extra={"report": report})
    _notify(clients, settings, report)
    failed = report["counts"].get("failed", 0)
    if stack_event is not None:
        if failed:  # keep the stack until the environment stops billing; the report says what failed
            raise RuntimeError(f"clean-up failed for {failed} resource(s): {json.dumps(report['actions'])}")
        return {"PhysicalResourceId": stack_event.PhysicalResourceId or physical_id, "Data": report["counts"]}
    return report


@cache
def _clients() -> Clients:
    services = ("sagemaker", "resourcegroupstaggingapi", "cloudwatch", "sns", "cloudformation")
    return Clients(*(boto3.client(name) for name in services))


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return clean_up(event, Settings.from_environ(os.environ), _clients(), datetime.now(UTC))
