"""What the promotion hook reads: its settings, the event that invoked it, the execution and its evaluation report.

Every refusal raises `PromotionError` naming the field, variable or object, before anything is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

EXECUTION_ARN = r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/([a-z0-9-]+)/execution/([a-z0-9]+)$"
IMAGE_URI = r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$"
GIT_SHA = r"^[0-9a-f]{40}$"
S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
# Pipeline parameters the EventBridge path reads from the execution (the Lambda step passes them directly).
IMAGE_PARAMETER = "ImageUri"
GIT_SHA_PARAMETER = "GitSha"


class PromotionError(ValueError):
    """Bad event, configuration or report; nothing has been written when it is raised."""


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
    # This environment's pipelines by exact name: a name prefix would also admit a `dev-eu` environment's to `dev`.
    pipelines: tuple[Annotated[str, Field(pattern=r"^[a-z0-9-]{1,256}$")], ...] = Field(min_length=1)

    @field_validator("thresholds")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for name, threshold in value.items():
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold '{name}' = {threshold} is outside [0, 1]")
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        names = {field: f"RAGOPS_{field.upper()}" for field in cls.model_fields}  # the stack sets these
        values: dict[str, Any] = {field: environ.get(var) or None for field, var in names.items()}
        try:
            values["thresholds"] = json.loads(values["thresholds"] or "null")
            values["pipelines"] = tuple((values["pipelines"] or "").split(",")) if values["pipelines"] else None
            return cls(**values)
        except json.JSONDecodeError as error:
            raise PromotionError(f"environment variable RAGOPS_THRESHOLDS is not JSON: {error}") from None
        except ValidationError as error:
            raise PromotionError("configuration: " + describe(error, names)) from None


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
    started_at: datetime  # SageMaker's CreationTime of the execution: orders promotions of one environment

    @property
    def pipeline_name(self) -> str:
        return re.fullmatch(EXECUTION_ARN, self.execution_arn)[1]  # type: ignore[index]

    @property
    def execution_id(self) -> str:
        return re.fullmatch(EXECUTION_ARN, self.execution_arn)[2]  # type: ignore[index]


def describe(error: ValidationError, names: Mapping[str, str] | None = None) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        if names and where in names:
            where = f"environment variable {names[where]}"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_event(event: Any, settings: Settings, sagemaker: Any) -> Candidate:
    """The candidate an event names; the event is checked whole before SageMaker is asked about the execution."""
    if not isinstance(event, Mapping):
        raise PromotionError(f"event must be a JSON object, got {type(event).__name__}")
    try:
        if event.get("source") == "aws.sagemaker" or "detail-type" in event:
            change = parse(event=dict(event), model=PipelineStatusChange)
            _check_owner(change.detail.pipelineExecutionArn, settings)
            return _from_status_change(change.detail.pipelineExecutionArn, settings, sagemaker)
        step = parse(event=dict(event), model=PipelineStepEvent)
    except ValidationError as error:
        raise PromotionError("invalid event: " + describe(error)) from None
    if step.environment != settings.environment:
        raise PromotionError(
            f"event field 'environment': '{step.environment}' is not this function's environment "
            f"'{settings.environment}'"
        )
    _check_owner(step.execution_arn, settings)
    bucket = S3_URI.match(step.report_s3_uri)[1]  # type: ignore[index]
    if bucket != settings.data_bucket:
        raise PromotionError(f"event field 'report_s3_uri': bucket '{bucket}' is not the data bucket")
    started = _started_at(sagemaker, step.execution_arn)
    return Candidate(step.execution_arn, step.report_s3_uri, step.image_uri, step.git_sha, "pipeline-step", started)


def _check_owner(execution_arn: str, settings: Settings) -> None:
    pipeline = re.fullmatch(EXECUTION_ARN, execution_arn)[1]  # type: ignore[index]
    if pipeline not in settings.pipelines:
        raise PromotionError(
            f"pipeline '{pipeline}' does not belong to environment '{settings.environment}' "
            f"(its pipelines: {', '.join(settings.pipelines)})"
        )


def _from_status_change(arn: str, settings: Settings, sagemaker: Any) -> Candidate:
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
        started_at=_started_at(sagemaker, arn),
    )


def _started_at(sagemaker: Any, execution_arn: str) -> datetime:
    try:
        return sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)["CreationTime"]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException"):
            raise PromotionError(f"pipeline execution {execution_arn}: {error.response['Error']['Code']}") from None
        raise


def _execution_parameters(sagemaker: Any, execution_arn: str) -> dict[str, str]:
    paginator = sagemaker.get_paginator("list_pipeline_parameters_for_execution")
    return {
        p["Name"]: p["Value"]
        for page in paginator.paginate(PipelineExecutionArn=execution_arn)
        for p in page.get("PipelineParameters", [])
    }


def read_report(s3: Any, uri: str) -> EvaluationReport:
    bucket, key = S3_URI.match(uri).groups()  # type: ignore[union-attr]
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise PromotionError(f"evaluation report {uri}: {error.response['Error']['Code']}") from None
    try:
        return EvaluationReport.model_validate_json(body)
    except ValidationError as error:
        raise PromotionError(f"evaluation report {uri} is malformed: {describe(error)}") from None
