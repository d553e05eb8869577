"""Promotion gate: promote a pipeline run's configuration only when its measured metrics reach the thresholds.

Invoked by the pipeline's Lambda step or by EventBridge when a pipeline execution of this environment succeeds.
The evaluation report is read from S3 and every threshold metric is compared (higher is better). The decision
record is written once per execution as an S3 object guarded by `If-None-Match: *` (the idempotency marker and
the full, versioned record), then small pointers are put in SSM Parameter Store whose history is the audit trail.
Bad input raises `PromotionError` naming the field or object before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

logger = Logger(service="ragops-promotion")
tracer = Tracer(service="ragops-promotion")

EVENT_SOURCE = "ragops.promotion"
STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
EXECUTION_ARN = r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/([a-z0-9-]+)/execution/([a-z0-9]+)$"
IMAGE_URI = r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$"
GIT_SHA = r"^[0-9a-f]{40}$"
S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
STANDARD_PARAMETER_BYTES = 4096  # larger pointers (long run configs) go to the Advanced tier
# Pipeline parameters the EventBridge path reads from the execution (the Lambda step passes them directly).
IMAGE_PARAMETER = "ImageUri"
GIT_SHA_PARAMETER = "GitSha"


class PromotionError(ValueError):
    """Bad event, configuration or report; nothing has been written when it is raised."""


class PromotionRejected(RuntimeError):
    """The pipeline step's run missed the environment's thresholds; the decision is recorded, the step fails."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Settings(_Frozen):
    """What the operations stack passes in environment variables."""

    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{1,15}$")
    next_environment: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{1,15}$")
    thresholds: dict[str, float] = Field(min_length=1)
    data_bucket: str = Field(min_length=3)
    ssm_prefix: str = Field(pattern=r"^(/[a-z0-9-]+)+$")
    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:")
    event_bus: str = Field(min_length=1)

    @field_validator("thresholds")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for name, threshold in value.items():
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold '{name}' = {threshold} is outside [0, 1]")
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        names = {
            "environment": "RAGOPS_ENVIRONMENT",
            "next_environment": "RAGOPS_NEXT_ENVIRONMENT",
            "thresholds": "RAGOPS_THRESHOLDS",
            "data_bucket": "RAGOPS_DATA_BUCKET",
            "ssm_prefix": "RAGOPS_SSM_PREFIX",
            "topic_arn": "RAGOPS_TOPIC_ARN",
            "event_bus": "RAGOPS_EVENT_BUS",
        }
        values: dict[str, Any] = {field: environ.get(var) or None for field, var in names.items()}
        try:
            values["thresholds"] = json.loads(values["thresholds"] or "null")
            return cls(**values)
        except json.JSONDecodeError as error:
            raise PromotionError(f"environment variable RAGOPS_THRESHOLDS is not JSON: {error}") from None
        except ValidationError as error:
            raise PromotionError("configuration: " + _describe(error, names)) from None


class PipelineStepEvent(_Frozen):
    """The pipeline's Lambda step input (the pipeline stack passes these as step inputs)."""

    environment: str
    execution_arn: str = Field(pattern=EXECUTION_ARN)
    report_s3_uri: str = Field(pattern=S3_URI.pattern)
    image_uri: str = Field(pattern=IMAGE_URI)
    git_sha: str = Field(pattern=GIT_SHA)


class PipelineStatusDetail(BaseModel):
    """The documented detail of "SageMaker Model Building Pipeline Execution Status Change"."""

    model_config = ConfigDict(extra="allow", frozen=True)

    pipelineArn: str
    pipelineExecutionArn: str = Field(pattern=EXECUTION_ARN)
    currentPipelineExecutionStatus: Literal["Succeeded"]


class PipelineStatusChange(EventBridgeModel):
    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Model Building Pipeline Execution Status Change"] = Field(alias="detail-type")
    detail: PipelineStatusDetail


class EvaluationReport(BaseModel):
    """`runs/<execution-id>/report/report.json`, written by the evaluation stage."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1]
    mlflow_experiment: str = Field(min_length=1)
    mlflow_parent_run_id: str = Field(min_length=1)
    run_config: dict[str, Any]
    metrics: dict[str, Any]
    skipped_metrics: dict[str, str] = {}
    question_count: int = Field(gt=0)


@dataclass(frozen=True)
class Candidate:
    """One pipeline execution asking to be promoted, whatever invoked the function."""

    execution_arn: str
    report_s3_uri: str
    image_uri: str
    git_sha: str
    trigger: Literal["pipeline-step", "eventbridge"]

    @property
    def pipeline_name(self) -> str:
        return re.fullmatch(EXECUTION_ARN, self.execution_arn)[1]  # type: ignore[index]

    @property
    def execution_id(self) -> str:
        return re.fullmatch(EXECUTION_ARN, self.execution_arn)[2]  # type: ignore[index]


@dataclass(frozen=True)
class Clients:
    s3: Any
    ssm: Any
    events: Any
    sns: Any
    sagemaker: Any


def _describe(error: ValidationError, names: Mapping[str, str] | None = None) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        if names and where in names:
            where = f"environment variable {names[where]}"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _parse_event(event: Any, settings: Settings, sagemaker: Any) -> Candidate:
    if not isinstance(event, Mapping):
        raise PromotionError(f"event must be a JSON object, got {type(event).__name__}")
    try:
        if event.get("source") == "aws.sagemaker" or "detail-type" in event:
            change = parse(event=dict(event), model=PipelineStatusChange)
            candidate = _from_status_change(change, settings, sagemaker)
        else:
            step = parse(event=dict(event), model=PipelineStepEvent)
            if step.environment != settings.environment:
                raise PromotionError(
                    f"event field 'environment': '{step.environment}' is not this function's environment "
                    f"'{settings.environment}'"
                )
            candidate = Candidate(step.execution_arn, step.report_s3_uri, step.image_uri, step.git_sha, "pipeline-step")
    except ValidationError as error:
        raise PromotionError("invalid event: " + _describe(error)) from None
    prefix = f"ragops-{settings.environment}-"
    if not candidate.pipeline_name.startswith(prefix):
        raise PromotionError(
            f"pipeline '{candidate.pipeline_name}' does not belong to environment '{settings.environment}' "
            f"(expected a name starting with '{prefix}')"
        )
    bucket = S3_URI.match(candidate.report_s3_uri)[1]  # type: ignore[index]
    if bucket != settings.data_bucket:
        raise PromotionError(f"event field 'report_s3_uri': bucket '{bucket}' is not the data bucket")
    return candidate


def _from_status_change(change: PipelineStatusChange, settings: Settings, sagemaker: Any) -> Candidate:
    arn = change.detail.pipelineExecutionArn
    execution_id = re.fullmatch(EXECUTION_ARN, arn)[2]  # type: ignore[index]
    parameters = _execution_parameters(sagemaker, arn)
    for name, pattern in ((IMAGE_PARAMETER, IMAGE_URI), (GIT_SHA_PARAMETER, GIT_SHA)):
        if not re.fullmatch(pattern, parameters.get(name, "")):
            raise PromotionError(f"pipeline execution {arn}: parameter '{name}' is missing or malformed")
    return Candidate(
        execution_arn=arn,
        report_s3_uri=f"s3://{settings.data_bucket}/runs/{execution_id}/report/report.json",
        image_uri=parameters[IMAGE_PARAMETER],
        git_sha=parameters[GIT_SHA_PARAMETER],
        trigger="eventbridge",
    )


def _execution_parameters(sagemaker: Any, execution_arn: str) -> dict[str, str]:
    paginator = sagemaker.get_paginator("list_pipeline_parameters_for_execution")
    return {
        p["Name"]: p["Value"]
        for page in paginator.paginate(PipelineExecutionArn=execution_arn)
        for p in page.get("PipelineParameters", [])
    }


def _read_report(s3: Any, uri: str) -> EvaluationReport:
    bucket, key = S3_URI.match(uri).groups()  # type: ignore[union-attr]
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise PromotionError(f"evaluation report {uri}: {error.response['Error']['Code']}") from None
    try:
        return EvaluationReport.model_validate_json(body)
    except ValidationError as error:
        raise PromotionError(f"evaluation report {uri} is malformed: {_describe(error)}") from None


def _threshold_metrics(report: EvaluationReport, thresholds: Mapping[str, float], uri: str) -> dict[str, float]:
    """The value of every threshold metric; refuses skipped, missing, non-numeric and non-finite values."""
    values = {}
    for name in thresholds:
        if name in report.skipped_metrics:
            raise PromotionError(
                f"evaluation report {uri}: metric '{name}' was skipped ({report.skipped_metrics[name]})"
            )
        value = report.metrics.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PromotionError(f"evaluation report {uri}: metric '{name}' is missing or not a number ({value!r})")
        if not math.isfinite(value):
            raise PromotionError(f"evaluation report {uri}: metric '{name}' is not finite ({value})")
        values[name] = float(value)
    return values


def decide(candidate: Candidate, report: EvaluationReport, settings: Settings, now: datetime) -> dict[str, Any]:
    """The full decision record for one execution (deterministic given its inputs and `now`)."""
    metrics = _threshold_metrics(report, settings.thresholds, candidate.report_s3_uri)
    failures = [
        f"{name} {metrics[name]:.4f} < {threshold:.4f}"
        for name, threshold in sorted(settings.thresholds.items())
        if metrics[name] < threshold
    ]
    decision = "rejected" if failures else "promoted" if settings.next_environment else "released"
    return {
        "schema_version": 1,
        "decision": decision,
        "environment": settings.environment,
        "target_environment": settings.next_environment or settings.environment,
        "execution_arn": candidate.execution_arn,
        "trigger": candidate.trigger,
        "report_s3_uri": candidate.report_s3_uri,
        "image_uri": candidate.image_uri,
        "git_sha": candidate.git_sha,
        "mlflow_experiment": report.mlflow_experiment,
        "mlflow_parent_run_id": report.mlflow_parent_run_id,
        "run_config": report.run_config,
        "metrics": metrics,
        "thresholds": dict(settings.thresholds),
        "failures": failures,
        "question_count": report.question_count,
        "decided_at": now.isoformat(timespec="seconds"),
    }


def _record_key(settings: Settings, candidate: Candidate) -> str:
    return f"promotions/{settings.environment}/decisions/{candidate.pipeline_name}/{candidate.execution_id}.json"


def _write_record_once(s3: Any, bucket: str, key: str, record: dict[str, Any]) -> tuple[dict[str, Any], str, bool]:
    """Create the record unless it exists; return (stored record, version id, created)."""
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    try:
        response = s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json")
        return record, response.get("VersionId", "null"), True
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise
    stored = s3.get_object(Bucket=bucket, Key=key)
    return json.loads(stored["Body"].read()), stored.get("VersionId", "null"), False


def _pointer(record: dict[str, Any], bucket: str, key: str, version_id: str) -> dict[str, Any]:
    """The small SSM value: where the full record is and what identifies the configuration."""
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return {
        "decision": record["decision"],
        "execution_arn": record["execution_arn"],
        "source_environment": record["environment"],
        "record_s3_uri": f"s3://{bucket}/{key}",
        "record_version_id": version_id,
        "record_sha256": hashlib.sha256(body).hexdigest(),
        "image_uri": record["image_uri"],
        "git_sha": record["git_sha"],
        "mlflow_parent_run_id": record["mlflow_parent_run_id"],
        "run_config": record["run_config"],
        "metrics": record["metrics"],
        "failures": record["failures"],
        "decided_at": record["decided_at"],
    }


def _parameters(record: dict[str, Any], settings: Settings) -> list[str]:
    names = [f"{settings.ssm_prefix}/{settings.environment}/last-promotion-decision"]
    if record["decision"] == "promoted":  # read in this account by the job that deploys the next environment
        names.append(f"{settings.ssm_prefix}/{settings.environment}/promoted-config")
    elif record["decision"] == "released":
        names.append(f"{settings.ssm_prefix}/{settings.environment}/production-release")
    return names


def _history_has(ssm: Any, name: str, execution_arn: str) -> bool:
    try:
        for page in ssm.get_paginator("get_parameter_history").paginate(Name=name):
            if any(json.loads(v["Value"]).get("execution_arn") == execution_arn for v in page["Parameters"]):
                return True
    except ClientError as error:
        if error.response["Error"]["Code"] != "ParameterNotFound":
            raise
    return False


def _notify(clients: Clients, settings: Settings, pointer: dict[str, Any]) -> None:
    detail_type = {
        "promoted": "RagOps Configuration Promoted",
        "released": "RagOps Production Release Approved",
        "rejected": "RagOps Promotion Rejected",
    }[pointer["decision"]]
    result = clients.events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(pointer),
                "EventBusName": settings.event_bus,
                "Resources": [pointer["execution_arn"]],
            }
        ]
    )
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the promotion event: {result['Entries']}")
    clients.sns.publish(
        TopicArn=settings.topic_arn,
        Subject=f"RagOps {settings.environment}: {detail_type}"[:100],
        Message=json.dumps(pointer, indent=2),
    )


def promote(event: Any, settings: Settings, clients: Clients, now: datetime) -> dict[str, Any]:
    """Validate, decide, record once, notify. Repeat deliveries of an execution change nothing."""
    candidate = _parse_event(event, settings, clients.sagemaker)
    report = _read_report(clients.s3, candidate.report_s3_uri)
    record = decide(candidate, report, settings, now)

    key = _record_key(settings, candidate)
    record, version_id, created = _write_record_once(clients.s3, settings.data_bucket, key, record)
    pointer = _pointer(record, settings.data_bucket, key, version_id)
    value = json.dumps(pointer, sort_keys=True)
    missing = [
        name
        for name in _parameters(record, settings)
        if created or not _history_has(clients.ssm, name, candidate.execution_arn)
    ]
    tier = "Standard" if len(value.encode()) <= STANDARD_PARAMETER_BYTES else "Advanced"
    for name in missing:
        clients.ssm.put_parameter(Name=name, Value=value, Type="String", Tier=tier, Overwrite=True)
    if missing:
        _notify(clients, settings, pointer)
    duplicate = not created and not missing
    logger.info("promotion decision", extra={"pointer": pointer, "duplicate": duplicate, "parameters": missing})
    if candidate.trigger == "pipeline-step" and record["decision"] == "rejected":
        # The pipeline's gate used its own (overridable) parameters; the environment's thresholds decide.
        raise PromotionRejected(
            f"{candidate.execution_arn}: below the {settings.environment} thresholds: {record['failures']}"
        )
    return {
        "decision": record["decision"],
        "execution_arn": candidate.execution_arn,
        "record_s3_uri": pointer["record_s3_uri"],
        "failures": record["failures"],
        "duplicate": duplicate,
    }


@cache
def _clients() -> Clients:
    return Clients(*(boto3.client(name) for name in ("s3", "ssm", "events", "sns", "sagemaker")))


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return promote(event, Settings.from_environ(os.environ), _clients(), datetime.now(UTC))
