"""Start an execution of a deployed pipeline with provenance: the image by digest and the git commit.

The promotion hook refuses executions whose image is not pinned by digest or whose commit is unknown, so this
resolves both before starting: the image tag the deployed definition defaults to is looked up in ECR.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from processing.pipelines.parameters import GIT_SHA, IMAGE_URI, parameter_name, pipeline_name, start_values

ECR_IMAGE = re.compile(
    r"^(?P<registry>(?P<account>\d{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?)/(?P<repo>[^:@]+)(:(?P<tag>[\w.-]+))?(@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
GIT_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class PipelineStartError(RuntimeError):
    """The execution could not be started; the message says which input or call failed."""


@dataclass(frozen=True)
class StartedExecution:
    arn: str
    pipeline: str
    experiment: str
    image_uri: str
    git_sha: str


def clients(region: str | None) -> tuple[Any, Any]:
    """SageMaker and ECR clients; a missing region is reported like any other bad input."""
    import boto3

    try:
        session = boto3.Session(region_name=region)
        return session.client("sagemaker"), session.client("ecr")
    except BotoCoreError as error:
        raise PipelineStartError(f"{error} (pass --region or set AWS_REGION)") from error


def current_git_sha() -> str:
    """GITHUB_SHA in CI, else the checkout's HEAD."""
    sha = os.environ.get("GITHUB_SHA", "")
    if not sha:
        try:
            sha = subprocess.run(
                ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, as a developer runs it
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as error:
            raise PipelineStartError(f"cannot determine the git commit (pass --git-sha): {error}") from error
    return sha


def _defaults(definition_body: str) -> dict[str, Any]:
    definition = json.loads(definition_body)
    return {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}


def pinned_image(ecr: Any, image_uri: str) -> str:
    """`<registry>/<repo>@sha256:...`: a tag is resolved to the digest it points at now."""
    match = ECR_IMAGE.match(image_uri or "")
    if not match:
        raise PipelineStartError(f"{IMAGE_URI} {image_uri!r} is not an ECR image URI")
    if match["digest"]:
        return f"{match['registry']}/{match['repo']}@{match['digest']}"
    response = ecr.describe_images(
        registryId=match["account"], repositoryName=match["repo"], imageIds=[{"imageTag": match["tag"] or "latest"}]
    )
    details = response.get("imageDetails") or []
    if len(details) != 1 or not details[0].get("imageDigest"):
        raise PipelineStartError(f"ECR has no single image for {image_uri}")
    return f"{match['registry']}/{match['repo']}@{details[0]['imageDigest']}"


def start_execution(
    sagemaker: Any,
    ecr: Any,
    *,
    environment: str,
    variant: str,
    overrides: Mapping[str, str],
    git_sha: str,
) -> StartedExecution:
    if not GIT_COMMIT.match(git_sha):
        raise PipelineStartError(f"{GIT_SHA} {git_sha!r} is not a 40-character commit id")
    name = pipeline_name(environment, variant)
    try:
        described = sagemaker.describe_pipeline(PipelineName=name)
        defaults = _defaults(described["PipelineDefinition"])
        image = pinned_image(ecr, overrides.get(IMAGE_URI) or defaults.get(IMAGE_URI, ""))
        values = start_values({**overrides, IMAGE_URI: image, GIT_SHA: git_sha})
        arn = sagemaker.start_pipeline_execution(
            PipelineName=name,
            PipelineParameters=values,
            PipelineExecutionDescription=f"commit {git_sha[:12]}",
        )["PipelineExecutionArn"]
    except NoCredentialsError:
        raise PipelineStartError("no AWS credentials found (set AWS_PROFILE or run where a role is attached)") from None
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise PipelineStartError(f"{name}: {detail.get('Code')}: {detail.get('Message')}") from error
    except BotoCoreError as error:
        raise PipelineStartError(f"{name}: {error}") from error
    experiment = overrides.get("experiment_name") or str(defaults.get(parameter_name("experiment_name"), ""))
    return StartedExecution(arn=arn, pipeline=name, experiment=experiment, image_uri=image, git_sha=git_sha)
