"""Clean-up: stop paying for what experiments leave behind, and for everything running when the stack goes away.

Acts only on SageMaker resources tagged `ragops:project=ragops` and `ragops:environment=<this environment>`
(found with the Resource Groups Tagging API, re-checked before acting). Resources owned by CloudFormation (tag
`aws:cloudformation:stack-name`) are never touched: their stacks delete them. Modes:
- `scheduled`: endpoints idle (no invocations) for the idle TTL, endpoint configs and models no endpoint uses
  (older than the idle TTL, so a deployment in progress keeps them), pipeline executions running past their TTL.
- `delete` (the custom resource's Delete): every runtime endpoint, orphaned config and model, and running
  execution of this environment's pipelines.
`dry_run` reports what would happen without acting. The report lists every resource considered.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

logger = Logger(service="ragops-cleanup")
tracer = Tracer(service="ragops-cleanup")

PROJECT = "ragops"
TAG_PROJECT = "ragops:project"
TAG_ENVIRONMENT = "ragops:environment"
CLOUDFORMATION_TAG = "aws:cloudformation:stack-name"
RESOURCE_TYPES = ("sagemaker:endpoint", "sagemaker:endpoint-config", "sagemaker:model", "sagemaker:pipeline")
TRANSITIONAL_ENDPOINT_STATES = {
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "Deleting",
    "UpdateRollbackFailed",
}


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
    PhysicalResourceId: str | None = None
    ResourceProperties: dict[str, Any] = {}


@dataclass(frozen=True)
class Clients:
    sagemaker: Any
    tagging: Any
    cloudwatch: Any
    sns: Any


@dataclass
class Action:
    kind: str
    name: str
    action: str
    reason: str


@dataclass
class Report:
    environment: str
    mode: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str, reason: str) -> None:
        self.actions.append(Action(kind, name, action, reason))

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for item in self.actions:
            counts[item.action] = counts.get(item.action, 0) + 1
        return {
            "environment": self.environment,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "counts": counts,
            "actions": [asdict(a) for a in self.actions],
        }


@dataclass(frozen=True)
class Tagged:
    """This environment's resources, by type, as ARN -> tags (ARNs lower-cased: SageMaker lower-cases names)."""

    by_type: dict[str, dict[str, dict[str, str]]]

    def of(self, resource_type: str) -> dict[str, dict[str, str]]:
        return self.by_type.get(resource_type, {})


def find_tagged(tagging: Any, environment: str) -> Tagged:
    by_type: dict[str, dict[str, dict[str, str]]] = {}
    pages = tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_PROJECT, "Values": [PROJECT]}, {"Key": TAG_ENVIRONMENT, "Values": [environment]}],
        ResourceTypeFilters=list(RESOURCE_TYPES),
    )
    for page in pages:
        for item in page["ResourceTagMappingList"]:
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            # Defence in depth: act only when both tags are exactly this project's and environment's.
            if tags.get(TAG_PROJECT) != PROJECT or tags.get(TAG_ENVIRONMENT) != environment:
                continue
            arn = item["ResourceARN"].lower()
            resource_type = "sagemaker:" + arn.split(":", 5)[5].split("/", 1)[0]
            by_type.setdefault(resource_type, {})[arn] = tags
    return Tagged(by_type)


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page[key]


class Cleaner:
    """One run: decides per resource, acts unless dry run, records every decision."""

    def __init__(self, settings: Settings, clients: Clients, mode: str, dry_run: bool, now: datetime) -> None:
        self.settings = settings
        self.clients = clients
        self.mode = mode
        self.now = now
        self.report = Report(settings.environment, mode, dry_run)
        self.idle_ttl = timedelta(hours=settings.endpoint_idle_ttl_hours)
        self.execution_ttl = timedelta(hours=settings.pipeline_execution_ttl_hours)

    def run(self) -> Report:
        tagged = find_tagged(self.clients.tagging, self.settings.environment)
        deleted_endpoints = self._endpoints(tagged.of("sagemaker:endpoint"))
        deleted_configs = self._endpoint_configs(tagged.of("sagemaker:endpoint-config"), deleted_endpoints)
        self._models(tagged.of("sagemaker:model"), deleted_configs)
        self._pipeline_executions(tagged.of("sagemaker:pipeline"))
        return self.report

    def _act(self, kind: str, name: str, verb: str, reason: str, call: Callable[[], Any]) -> bool:
        """Perform `call` (unless dry run) and record it; True when the resource is (or would be) gone."""
        if self.report.dry_run:
            self.report.add(kind, name, f"would-{verb}", reason)
            return True
        try:
            call()
        except ClientError as error:
            self.report.add(kind, name, "failed", f"{verb}: {error.response['Error']['Code']}: {reason}")
            return False
        self.report.add(kind, name, verb, reason)
        return True

    def _owned_by_stack(self, kind: str, name: str, tags: dict[str, str]) -> bool:
        stack = tags.get(CLOUDFORMATION_TAG)
        if stack:
            self.report.add(kind, name, "skip", f"owned by CloudFormation stack {stack}")
        return bool(stack)

    def _endpoints(self, tagged: dict[str, dict[str, str]]) -> set[str]:
        deleted: set[str] = set()
        if not tagged:
            return deleted
        for summary in _paginate(self.clients.sagemaker, "list_endpoints", "Endpoints"):
            arn, name = summary["EndpointArn"].lower(), summary["EndpointName"]
            if arn not in tagged or self._owned_by_stack("endpoint", name, tagged[arn]):
                continue
            status = summary["EndpointStatus"]
            if status in TRANSITIONAL_ENDPOINT_STATES:
                self.report.add("endpoint", name, "skip", f"status {status}")
                continue
            if self.mode == "delete":
                reason = "environment stack is being deleted"
            else:
                age = self.now - summary["CreationTime"]
                if age < self.idle_ttl:
                    self.report.add("endpoint", name, "skip", f"younger than the idle TTL ({age} old)")
                    continue
                invocations = self._invocations(name)
                if invocations:
                    self.report.add(
                        "endpoint", name, "skip", f"{invocations:.0f} invocations in the last {self.idle_ttl}"
                    )
                    continue
                reason = f"no invocations in the last {self.idle_ttl}"
            if self._act(
                "endpoint",
                name,
                "delete",
                reason,
                lambda n=name: self.clients.sagemaker.delete_endpoint(EndpointName=n),
            ):
                deleted.add(name)
        return deleted

    def _invocations(self, endpoint: str) -> float:
        variants = self.clients.sagemaker.describe_endpoint(EndpointName=endpoint).get("ProductionVariants", [])
        total = 0.0
        for variant in variants:
            points = self.clients.cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker",
                MetricName="Invocations",
                Dimensions=[
                    {"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": variant["VariantName"]},
                ],
                StartTime=self.now - self.idle_ttl,
                EndTime=self.now,
                Period=int(self.idle_ttl.total_seconds()),
                Statistics=["Sum"],
            )["Datapoints"]
            total += sum(p["Sum"] for p in points)
        return total

    def _orphan_reason(self, created: datetime) -> str | None:
        """Why an unused config/model may go now, or None while it is young enough to be mid-deployment."""
        if self.mode == "delete":
            return "not used by any endpoint; environment stack is being deleted"
        if self.now - created < self.idle_ttl:
            return None
        return f"not used by any endpoint and older than {self.idle_ttl}"

    def _endpoint_configs(self, tagged: dict[str, dict[str, str]], deleted_endpoints: set[str]) -> set[str]:
        deleted: set[str] = set()
        if not tagged:
            return deleted
        in_use = {
            self.clients.sagemaker.describe_endpoint(EndpointName=e["EndpointName"])["EndpointConfigName"]
            for e in _paginate(self.clients.sagemaker, "list_endpoints", "Endpoints")
            if e["EndpointName"] not in deleted_endpoints
        }
        for summary in _paginate(self.clients.sagemaker, "list_endpoint_configs", "EndpointConfigs"):
            arn, name = summary["EndpointConfigArn"].lower(), summary["EndpointConfigName"]
            if arn not in tagged or self._owned_by_stack("endpoint-config", name, tagged[arn]):
                continue
            if name in in_use:
                self.report.add("endpoint-config", name, "skip", "used by an endpoint")
                continue
            reason = self._orphan_reason(summary["CreationTime"])
            if reason is None:
                self.report.add("endpoint-config", name, "skip", f"unused but younger than {self.idle_ttl}")
                continue
            call = lambda n=name: self.clients.sagemaker.delete_endpoint_config(EndpointConfigName=n)  # noqa: E731
            if self._act("endpoint-config", name, "delete", reason, call):
                deleted.add(name)
        return deleted

    def _models(self, tagged: dict[str, dict[str, str]], deleted_configs: set[str]) -> None:
        if not tagged:
            return
        in_use = set()
        for config in _paginate(self.clients.sagemaker, "list_endpoint_configs", "EndpointConfigs"):
            if config["EndpointConfigName"] in deleted_configs:
                continue
            described = self.clients.sagemaker.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
            variants = described.get("ProductionVariants", []) + described.get("ShadowProductionVariants", [])
            in_use.update(v["ModelName"] for v in variants if "ModelName" in v)
        for summary in _paginate(self.clients.sagemaker, "list_models", "Models"):
            arn, name = summary["ModelArn"].lower(), summary["ModelName"]
            if arn not in tagged or self._owned_by_stack("model", name, tagged[arn]):
                continue
            if name in in_use:
                self.report.add("model", name, "skip", "used by an endpoint config")
                continue
            reason = self._orphan_reason(summary["CreationTime"])
            if reason is None:
                self.report.add("model", name, "skip", f"unused but younger than {self.idle_ttl}")
                continue
            self._act("model", name, "delete", reason, lambda n=name: self.clients.sagemaker.delete_model(ModelName=n))

    def _pipeline_executions(self, tagged: dict[str, dict[str, str]]) -> None:
        if not tagged:
            return
        for pipeline in _paginate(self.clients.sagemaker, "list_pipelines", "PipelineSummaries"):
            if pipeline["PipelineArn"].lower() not in tagged:
                continue
            executions = _paginate(
                self.clients.sagemaker, "list_pipeline_executions", "PipelineExecutionSummaries",
                PipelineName=pipeline["PipelineName"],
            )  # fmt: skip
            for execution in executions:
                if execution.get("PipelineExecutionStatus") != "Executing":
                    continue
                arn = execution["PipelineExecutionArn"]
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
                self._act("pipeline-execution", arn, "stop", reason, call)


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
    report = Cleaner(settings, clients, mode, dry_run, now).run().as_dict()
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
    return Clients(*(boto3.client(n) for n in ("sagemaker", "resourcegroupstaggingapi", "cloudwatch", "sns")))


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return clean_up(event, Settings.from_environ(os.environ), _clients(), datetime.now(UTC))
