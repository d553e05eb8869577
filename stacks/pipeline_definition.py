"""SageMaker pipeline definitions as deterministic dicts, from the stage registry the local runner uses.

Two shapes of the same pipeline: `single` runs every stage in one processing job (`python -m processing run`),
`multi` runs one processing job per stage (`python -m processing stage <id>`). Either way each stage's output
directory lands in `s3://<data bucket>/runs/<execution id>/<output>/` (the report in `.../report/report.json`,
where the promotion hook looks for it). In `multi`, the ingest step runs on the environment's processing
instance count: SageMaker hands each instance a share of the chunk shard files (`ShardedByS3Key`), every
instance writes its share into the execution's index version, and the separate IndexPublish step after it
reconciles the count and moves the alias. Every other step, and the `single` job, runs on one instance.
Both shapes end in the same quality gate: a condition on the evaluation report that leads to the promotion
Lambda or to a Fail step naming the missed thresholds. The promotion hook applies the environment's own
thresholds (the pipeline's are overridable parameters) and returns a rejection as its decision, not as an
error; a second condition on that decision fails the execution with the hook's reasons, so a rejected run
never ends Succeeded and a rejection never counts as a Lambda error.
Values may be CDK tokens; the stack resolves them with `Stack.to_json_string`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from processing.paths import PARENT_RUN_FILE
from processing.pipelines.identity import EXECUTION_VARIABLE
from processing.pipelines.parameters import DATASET_URI, GATED_METRICS, GIT_SHA, IMAGE_URI, declare, run_parameters
from processing.stages.registry import DATASET_INPUT, SHARDS_DIR, STAGES, StageSpec

DEFINITION_VERSION = "2020-12-01"
CONTAINER_ROOT = "/opt/ml/processing"
IMAGE_ENTRYPOINT = "/opt/ragops/processing/entrypoint.sh"  # processing/Dockerfile's ENTRYPOINT
REPORT_FILE = "report.json"
REPORT_PROPERTY_FILE = "EvaluationReport"
SINGLE_STEP = "RAGPipeline"
GATE_STEP = "QualityGate"
PROMOTE_STEP = "Promote"
FAIL_STEP = "ThresholdsNotMet"
DECISION_STEP = "PromotionDecision"
REJECTED_STEP = "PromotionRejected"


@dataclass(frozen=True)
class JobSettings:
    """Where and how processing jobs run; every value comes from the environment config or other stacks."""

    role_arn: str
    data_bucket: str
    kms_key_arn: str
    subnet_ids: Sequence[str]
    security_group_ids: Sequence[str]
    instance_type: str
    instance_count: int  # of the sharded ingest step; every other step runs on one instance
    volume_size_gib: int
    max_runtime_seconds: int
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineSpec:
    environment: str
    variant: str  # "single" | "multi"
    job: JobSettings
    defaults: Mapping[str, Any]  # run-config defaults plus provenance parameter defaults
    stand_ins: Mapping[str, Any] = field(default_factory=dict)  # same-form values validating deploy-time tokens
    promotion_function_arn: str | None = None


def get(path: str) -> dict[str, str]:
    return {"Get": path}


def join(*values: Any, on: str = "") -> dict[str, Any]:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def run_prefix(bucket: str, output: str) -> dict[str, Any]:
    """s3://<bucket>/runs/<execution id>/<output>, resolved when the execution starts."""
    return join(f"s3://{bucket}/runs", get("Execution.PipelineExecutionId"), output, on="/")


def config_arguments() -> list[Any]:
    """`--set field=<parameter>` for every run-config field, so a run is parameterised end to end.

    Concurrent executions of one environment (single and multi, or a manual run beside CI) each write and query
    their own index version (`<index_name>-<parent run id>`); the alias `<index_name>` names the latest published.
    """
    return [
        arg
        for parameter in run_parameters()
        for arg in ("--set", join(f"{parameter.field}=", get(f"Parameters.{parameter.name}")))
    ]


def _processing_input(name: str, source: Any, local_path: str = "", distribution: str = "FullyReplicated") -> dict:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": source,
            "LocalPath": local_path or f"{CONTAINER_ROOT}/input/{name}",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": distribution,
        },
    }


def _sharded_inputs(name: str, source: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The chunk shard files split between the step's instances, and the parent-run file every instance needs
    (a sharded prefix would give it to one instance only); returns the inputs and the CLI arguments."""
    run_input = f"{name}-run"
    inputs = [
        _processing_input(
            name,
            join(source, SHARDS_DIR, on="/"),
            f"{CONTAINER_ROOT}/input/{name}/{SHARDS_DIR}",
            "ShardedByS3Key",
        ),
        _processing_input(run_input, join(source, PARENT_RUN_FILE, on="/")),
    ]
    arguments = ["--input", f"{name}={CONTAINER_ROOT}/input/{name}"]
    return inputs, [*arguments, "--parent-run-file", f"{CONTAINER_ROOT}/input/{run_input}/{PARENT_RUN_FILE}"]


def _processing_output(name: str, bucket: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "AppManaged": False,
        "S3Output": {
            "S3Uri": run_prefix(bucket, name),
            "LocalPath": f"{CONTAINER_ROOT}/output/{name}",
            "S3UploadMode": "EndOfJob",
        },
    }


def processing_arguments(
    job: JobSettings,
    entrypoint: list[str],
    arguments: list[Any],
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    instance_count: int = 1,
) -> dict[str, Any]:
    """A CreateProcessingJob request without its name (the pipeline names each job)."""
    return {
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceType": job.instance_type,
                "InstanceCount": instance_count,
                "VolumeSizeInGB": job.volume_size_gib,
                "VolumeKmsKeyId": job.kms_key_arn,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_runtime_seconds},
        "AppSpecification": {
            "ImageUri": get(f"Parameters.{IMAGE_URI}"),
            "ContainerEntrypoint": entrypoint,
            "ContainerArguments": arguments,
        },
        "RoleArn": job.role_arn,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs, "KmsKeyId": job.kms_key_arn},
        "NetworkConfig": {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": False,  # stages call the endpoints, the domain and MLflow
            "VpcConfig": {"SecurityGroupIds": list(job.security_group_ids), "Subnets": list(job.subnet_ids)},
        },
        # The evaluation stage names the execution in its report, which the promotion hook checks. The SageMaker
        # Python SDK takes a PipelineVariable such as ExecutionVariables.PIPELINE_EXECUTION_ARN as a processing
        # job's environment value (Processor `env: Dict[str, str | PipelineVariable]`); it serialises as this Get.
        "Environment": {
            **dict(sorted(job.environment.items())),
            EXECUTION_VARIABLE: get("Execution.PipelineExecutionArn"),
        },
    }


def _command(*words: str) -> list[str]:
    """The image's entry point (it drops to the unprivileged user) with a `python -m processing` sub-command."""
    return [IMAGE_ENTRYPOINT, *words]


def single_step(job: JobSettings) -> dict[str, Any]:
    """Every stage in one job; each stage's output directory is uploaded where the multi-step one puts it."""
    arguments = [
        "--dataset",
        f"{CONTAINER_ROOT}/input/{DATASET_INPUT}",
        "--work-dir",
        f"{CONTAINER_ROOT}/output",
        *config_arguments(),
    ]
    step = _processing_step(
        SINGLE_STEP,
        processing_arguments(
            job,
            _command("run", "--mode", "single"),
            arguments,
            [_processing_input(DATASET_INPUT, get(f"Parameters.{DATASET_URI}"))],
            [_processing_output(spec.output, job.data_bucket) for spec in STAGES],
        ),
    )
    step["PropertyFiles"] = [_report_property(STAGES[-1].output, REPORT_FILE)]
    return step


def _processing_step(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"Name": name, "Type": "Processing", "Arguments": arguments}


def _report_property(output: str, path: str) -> dict[str, str]:
    return {"PropertyFileName": REPORT_PROPERTY_FILE, "OutputName": output, "FilePath": path}


def _stage_source(spec: StageSpec, name: str) -> Any:
    if name == DATASET_INPUT:
        return get(f"Parameters.{DATASET_URI}")
    producer = next(s for s in STAGES if s.output == name)
    return get(f"Steps.{producer.run_name}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri")


def stage_step(spec: StageSpec, job: JobSettings) -> dict[str, Any]:
    """One stage as its own job; reading earlier outputs by step property also orders the steps. A stage with a
    sharded input runs on `job.instance_count` instances, each given a share of that input's shard files."""
    inputs: list[dict[str, Any]] = []
    arguments: list[Any] = []
    for name in spec.inputs:
        if name == spec.sharded_input:
            sharded, sharded_arguments = _sharded_inputs(name, _stage_source(spec, name))
            inputs += sharded
            arguments += sharded_arguments
        else:
            inputs.append(_processing_input(name, _stage_source(spec, name)))
            arguments += ["--input", f"{name}={CONTAINER_ROOT}/input/{name}"]
    arguments += ["--output-dir", f"{CONTAINER_ROOT}/output/{spec.output}", *config_arguments()]
    step = _processing_step(
        spec.run_name,
        processing_arguments(
            job,
            _command("stage", spec.stage_id),
            arguments,
            inputs,
            [_processing_output(spec.output, job.data_bucket)],
            instance_count=job.instance_count if spec.sharded_input else 1,
        ),
    )
    if spec is STAGES[-1]:
        step["PropertyFiles"] = [_report_property(spec.output, REPORT_FILE)]
    return step


def _report_value(step: str, metric: str) -> dict[str, Any]:
    return {
        "Std:JsonGet": {
            "PropertyFile": get(f"Steps.{step}.PropertyFiles.{REPORT_PROPERTY_FILE}"),
            "Path": f"metrics.{metric}",
        }
    }


def _report_uri(step: str, output: str, path: str) -> dict[str, Any]:
    return join(get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"), path, on="/")


def gate_step(spec: PipelineSpec, report_step: str, report_output: str, report_path: str) -> dict[str, Any]:
    by_field = {p.field: p.name for p in run_parameters()}
    conditions = [
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": _report_value(report_step, metric),
            "RightValue": get(f"Parameters.{by_field[threshold]}"),
        }
        for metric, threshold in GATED_METRICS.items()
    ]
    failure_values: list[Any] = [f"evaluation below the {spec.environment} thresholds:"]
    for metric, threshold in GATED_METRICS.items():
        failure_values += [
            f" {metric}=",
            _report_value(report_step, metric),
            " (min ",
            get(f"Parameters.{by_field[threshold]}"),
            ")",
        ]
    fail = {"Name": FAIL_STEP, "Type": "Fail", "Arguments": {"ErrorMessage": join(*failure_values)}}
    if_steps = (
        [] if spec.promotion_function_arn is None else promotion_steps(spec, report_step, report_output, report_path)
    )
    return {
        "Name": GATE_STEP,
        "Type": "Condition",
        "Arguments": {"Conditions": conditions, "IfSteps": if_steps, "ElseSteps": [fail]},
    }


def promotion_steps(spec: PipelineSpec, report_step: str, report_output: str, report_path: str) -> list[dict[str, Any]]:
    """The hook's Lambda step, then a condition on the decision it returns: a rejection fails the execution."""
    assert spec.promotion_function_arn is not None
    promote = {
        "Name": PROMOTE_STEP,
        "Type": "Lambda",
        "FunctionArn": spec.promotion_function_arn,
        "OutputParameters": [
            {"OutputName": "decision", "OutputType": "String"},
            {"OutputName": "failure_summary", "OutputType": "String"},
        ],
        "Arguments": {
            "environment": spec.environment,
            "execution_arn": get("Execution.PipelineExecutionArn"),
            "report_s3_uri": _report_uri(report_step, report_output, report_path),
            "image_uri": get(f"Parameters.{IMAGE_URI}"),
            "git_sha": get(f"Parameters.{GIT_SHA}"),
        },
    }
    output = f"Steps.{PROMOTE_STEP}.OutputParameters"
    rejected = {
        "Name": REJECTED_STEP,
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": join(
                f"promotion hook rejected the run against the {spec.environment} thresholds: ",
                get(f"{output}['failure_summary']"),
            )
        },
    }
    decision = {
        "Name": DECISION_STEP,
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": get(f"{output}['decision']"), "RightValue": "rejected"}],
            "IfSteps": [rejected],
            "ElseSteps": [],
        },
    }
    return [promote, decision]


def pipeline_definition(spec: PipelineSpec) -> dict[str, Any]:
    """The whole definition; the same inputs always give the same dict (and so the same JSON)."""
    if spec.variant == "single":
        steps = [single_step(spec.job)]
        report = (SINGLE_STEP, STAGES[-1].output, REPORT_FILE)
    elif spec.variant == "multi":
        steps = [stage_step(stage, spec.job) for stage in STAGES]
        report = (STAGES[-1].run_name, STAGES[-1].output, REPORT_FILE)
    else:
        raise ValueError(f"unknown pipeline variant {spec.variant!r}")
    return {
        "Version": DEFINITION_VERSION,
        "Metadata": {},
        "Parameters": declare(spec.defaults, stand_ins=spec.stand_ins),
        "Steps": [*steps, gate_step(spec, *report)],
    }
