"""Pipeline parameters: every run-config field, plus the provenance a promotion needs.

The CDK app declares these parameters and the `pipeline start` CLI fills them, so both derive them here from
`RunConfig` itself: adding a run-config field adds a pipeline parameter, with no second list to keep in step.
Standard library + pydantic only (the CDK synth imports this module).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from processing.config import RunConfig

VARIANTS = ("single", "multi")
IMAGE_URI = "ImageUri"  # the processing image, by digest when promotion is expected
GIT_SHA = "GitSha"  # the commit the image was built from
DATASET_URI = "DatasetS3Uri"  # S3 prefix of the input dataset
PROVENANCE = (IMAGE_URI, GIT_SHA, DATASET_URI)
# Run-config fields whose values belong to one environment (its endpoints, domain, judge, index, thresholds):
# a configuration promoted to the next environment carries every other field, never these.
ENVIRONMENT_FIELDS = frozenset(
    {
        "experiment_name",
        "aws_region",
        "embeddings",
        "sagemaker_embedding_endpoint",
        "sagemaker_embedding_endpoint_config",
        "sagemaker_embedding_payload",
        "vector_store",
        "opensearch_endpoint",
        "opensearch_shards",
        "opensearch_replicas",
        "index_name",
        "index_retention_hours",
        "generator",
        "generator_endpoint",
        "generator_endpoint_config",
        "environment_name",
        "generator_tokenizer_path",
        "generator_url",
        "generator_model",
        "generator_api_key_env",
        "generator_api",
        # what the environment's generator can return and how long its model reasons
        "top_logprobs",
        "confidence_measure",
        "max_answer_tokens",
        "reasoning_retry_max_tokens",
        "judge",
        "judge_model_id",
        "generation_concurrency",
        "ingest_instances",
        "judge_url",
        "judge_model",
        "judge_api_key_env",
        "min_judge_coverage",
        "min_hit_at_k",
        "min_mrr",
        "min_answer_embedding_cosine",
    }
)


# Report metric -> the run-config field holding its minimum: the evaluation stage's quality gate and the
# pipeline's QualityGate step check the same pairs (judge_coverage only where a judge is configured locally;
# the cloud pipeline always has one, so there a report without it fails the gate).
GATED_METRICS = {
    "hit_at_k": "min_hit_at_k",
    "mrr": "min_mrr",
    "answer_embedding_cosine": "min_answer_embedding_cosine",
    "judge_coverage": "min_judge_coverage",
}


def pipeline_name(environment: str, variant: str) -> str:
    """Pipelines hold no data, so they keep their names across generations of an environment."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown pipeline variant {variant!r}; variants: {', '.join(VARIANTS)}")
    return f"ragops-{environment}-{variant}"


def pipeline_names(environment: str) -> tuple[str, ...]:
    """Every pipeline of `environment` by exact name, as the hooks' IAM, event rule and checks match them: a name
    prefix such as `ragops-dev-` would also match the pipelines of a `dev-eu` environment in the same account."""
    return tuple(pipeline_name(environment, variant) for variant in VARIANTS)


def parameter_name(field: str) -> str:
    """`chunk_size` -> `ChunkSize` (SageMaker parameter names are PascalCase by convention)."""
    return "".join(part.capitalize() for part in field.split("_"))


@dataclass(frozen=True)
class RunParameter:
    field: str
    name: str
    kind: str  # SageMaker parameter type: String | Integer | Float | Boolean


def _kind(annotation: Any) -> str:
    if annotation is bool:
        return "Boolean"
    if annotation is int:
        return "Integer"
    if annotation is float:
        return "Float"
    if annotation is str or typing.get_origin(annotation) is Literal:
        return "String"
    raise TypeError(f"run-config annotation {annotation!r} has no SageMaker parameter type")


def run_parameters() -> tuple[RunParameter, ...]:
    """One parameter per run-config field, in field order (which keeps pipeline definitions deterministic)."""
    result = []
    for field, info in RunConfig.model_fields.items():
        if isinstance(info.annotation, types.UnionType):
            raise TypeError(f"run-config field {field!r} is optional; pipeline parameters need a concrete type")
        result.append(RunParameter(field, parameter_name(field), _kind(info.annotation)))
    return tuple(result)


def declare(defaults: Mapping[str, Any], *, stand_ins: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The definition's `Parameters` list; `defaults` are run-config values plus provenance.

    The run-config defaults are validated as one RunConfig. A value known only at deploy time (a CDK token such
    as a domain endpoint) is validated through its `stand_ins` entry, a value of the same form, and declared as is.
    """
    stand_ins = stand_ins or {}
    values = {k: v for k, v in defaults.items() if k in RunConfig.model_fields}
    config = RunConfig.model_validate({**values, **stand_ins})
    declared = [
        {
            "Name": p.name,
            "Type": p.kind,
            "DefaultValue": values[p.field] if p.field in stand_ins else getattr(config, p.field),
        }
        for p in run_parameters()
    ]
    return declared + [{"Name": name, "Type": "String", "DefaultValue": defaults.get(name, "")} for name in PROVENANCE]


def portable_overrides(record: Mapping[str, Any]) -> dict[str, str]:
    """`field=value` overrides from a promotion record's `run_config`, without environment-bound fields."""
    run_config = record.get("run_config")
    if not isinstance(run_config, Mapping):
        raise ValueError("promotion record has no run_config object")
    unknown = sorted(set(run_config) - set(RunConfig.model_fields))
    if unknown:
        raise ValueError(f"promotion record run_config has unknown field(s): {', '.join(unknown)}")
    return {
        key: json.dumps(value) if isinstance(value, bool) else str(value)
        for key, value in run_config.items()
        if key not in ENVIRONMENT_FIELDS
    }


def start_values(overrides: Mapping[str, str]) -> list[dict[str, str]]:
    """`PipelineParameters` for StartPipelineExecution from `field=value` overrides (validated first)."""
    RunConfig.model_validate({k: v for k, v in overrides.items() if k in RunConfig.model_fields})
    by_field = {p.field: p.name for p in run_parameters()}
    values = []
    for key, value in overrides.items():
        if key in by_field:
            values.append({"Name": by_field[key], "Value": str(value)})
        elif key in PROVENANCE:
            values.append({"Name": key, "Value": str(value)})
        else:
            raise ValueError(f"--set {key}: not a run-config field nor one of {', '.join(PROVENANCE)}")
    return values
