"""What the promotion hook reads: its settings, the event that invoked it, the execution and its evaluation report.

Every refusal raises `PromotionError` naming the field, variable or object, before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from hookkit import EXECUTION_ARN, describe, settings_from_environ
from pydantic import BaseModel, ConfigDict, Field, field_validator

# ECR repository names are at most 256 characters (botocore ecr 2015-09-21, RepositoryName): the whole URI is
# bounded, so a pointer holding it stays far inside Parameter Store's 4 KB (checked before the first write).
IMAGE_URI = r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]{0,255}@sha256:[0-9a-f]{64}$"
GIT_SHA = r"^[0-9a-f]{40}$"
S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
# Pipeline parameters both paths read from the execution (the Lambda step's copies must agree with them).
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

    @field_validator("pipelines", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return tuple(value.split(",")) if isinstance(value, str) else value

    @field_validator("thresholds")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for name, threshold in value.items():
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold '{name}' = {threshold} is outside [0, 1]")
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return settings_from_environ(cls, list(cls.model_fields), environ, PromotionError, json_fields=["thresholds"])


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


class ReportIdentity(_Frozen):
    """Which run wrote the report: the pipeline sets both on its processing jobs (stacks/pipeline_definition)."""

    environment: str | None
    pipeline_execution_arn: str | None


class EvaluationReport(BaseModel):
    """`runs/<execution-id>/report/report.json`, written by the evaluation stage."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1]
    identity: ReportIdentity
    mlflow_experiment: str = Field(min_length=1)
    mlflow_parent_run_id: str = Field(min_length=1)
    run_config: dict[str, Any]
    metrics: dict[str, Any]
    skipped_metrics: dict[str, str] = {}
    question_count: int = Field(gt=0)


Trigger = Literal["pipeline-step", "eventbridge"]


@dataclass(frozen=True)
class Candidate:
    """One pipeline execution asking to be promoted, whatever invoked the function."""

    execution_arn: str
    report_s3_uri: str
    image_uri: str
    git_sha: str
    trigger: Trigger
    started_at: datetime  # SageMaker's CreationTime of the execution: orders promotions of one environment

    @property
    def pipeline_name(self) -> str:
        return re.fullmatch(EXECUTION_ARN, self.execution_arn)[1]  # type: ignore[index]

    @property
    def execution_id(self) -> str:
        return re.fullmatch(EXECUTION_ARN, self.execution_arn)[2]  # type: ignore[index]


def parse_event(event: Any, settings: Settings, sagemaker: Any) -> Candidate:
    """The candidate an event names, from what SageMaker says about the execution, never from the event alone.

    Both paths take only the execution ARN on trust; the report location is derived from its execution id and the
    image and commit are the execution's own `ImageUri` and `GitSha` parameters. The step event's copies of them
    must agree, or the event is refused: a step naming another execution's report or image promotes nothing.
    """
    if not isinstance(event, Mapping):
        raise PromotionError(f"event must be a JSON object, got {type(event).__name__}")
    try:
        if event.get("source") == "aws.sagemaker" or "detail-type" in event:
            change = parse(event=dict(event), model=PipelineStatusChange)
            _check_owner(change.detail.pipelineExecutionArn, settings)
            return _candidate(change.detail.pipelineExecutionArn, settings, sagemaker, "eventbridge")
        step = parse(event=dict(event), model=PipelineStepEvent)
    except ValidationError as error:
        raise PromotionError("invalid event: " + describe(error)) from None
    if step.environment != settings.environment:
        raise PromotionError(
            f"event field 'environment': '{step.environment}' is not this function's environment "
            f"'{settings.environment}'"
        )
    _check_owner(step.execution_arn, settings)
    candidate = _candidate(step.execution_arn, settings, sagemaker, "pipeline-step")
    for field, claimed, own in (
        ("report_s3_uri", step.report_s3_uri, candidate.report_s3_uri),
        ("image_uri", step.image_uri, candidate.image_uri),
        ("git_sha", step.git_sha, candidate.git_sha),
    ):
        if claimed != own:
            raise PromotionError(
                f"event field '{field}': '{claimed}' is not what execution {step.execution_arn} ran with ('{own}')"
            )
    return candidate


def _check_owner(execution_arn: str, settings: Settings) -> None:
    pipeline = re.fullmatch(EXECUTION_ARN, execution_arn)[1]  # type: ignore[index]
    if pipeline not in settings.pipelines:
        raise PromotionError(
            f"pipeline '{pipeline}' does not belong to environment '{settings.environment}' "
            f"(its pipelines: {', '.join(settings.pipelines)})"
        )


def report_uri(settings: Settings, execution_id: str) -> str:
    """Where the pipeline's evaluation stage writes the report of this execution (stacks/pipeline_definition)."""
    return f"s3://{settings.data_bucket}/runs/{execution_id}/report/report.json"


def _candidate(arn: str, settings: Settings, sagemaker: Any, trigger: Trigger) -> Candidate:
    execution_id = re.fullmatch(EXECUTION_ARN, arn)[2]  # type: ignore[index]
    started = _started_at(sagemaker, arn)
    parameters = _execution_parameters(sagemaker, arn)
    for name, pattern in ((IMAGE_PARAMETER, IMAGE_URI), (GIT_SHA_PARAMETER, GIT_SHA)):
        if not re.fullmatch(pattern, parameters.get(name, "")):
            raise PromotionError(f"pipeline execution {arn}: parameter '{name}' is missing or malformed")
    return Candidate(
        execution_arn=arn,
        report_s3_uri=report_uri(settings, execution_id),
        image_uri=parameters[IMAGE_PARAMETER],
        git_sha=parameters[GIT_SHA_PARAMETER],
        trigger=trigger,
        started_at=started,
    )


def _started_at(sagemaker: Any, execution_arn: str) -> datetime:
    """`DescribePipelineExecution`'s CreationTime (botocore sagemaker 2017-07-24: its only error is
    ResourceNotFound; SageMaker also answers ValidationException for an ARN it cannot resolve)."""
    try:
        return sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)["CreationTime"]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException"):
            raise PromotionError(f"pipeline execution {execution_arn}: {error.response['Error']['Code']}") from None
        raise


def _execution_parameters(sagemaker: Any, execution_arn: str) -> dict[str, str]:
    """`ListPipelineParametersForExecution`: the parameter values of the execution itself."""
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
        # Only a missing report is a bad report. Anything else (SlowDown, 5xx, AccessDenied from a key policy) is
        # an error of the call, raised as such after the client's bounded retries: the run is not blamed for it.
        if error.response["Error"]["Code"] != "NoSuchKey":
            raise
        raise PromotionError(f"evaluation report {uri}: NoSuchKey") from None
    try:
        return EvaluationReport.model_validate_json(body)
    except ValidationError as error:
        raise PromotionError(f"evaluation report {uri} is malformed: {describe(error)}") from None
