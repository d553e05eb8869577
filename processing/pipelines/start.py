"""Start an execution of a deployed pipeline with provenance: the image by digest and the git commit.

The promotion hook refuses executions whose image is not pinned by digest or whose commit is unknown, so this
resolves both before starting: the image tag the deployed definition defaults to is looked up in ECR.

Started from a promotion record (`--promoted`), the run is the promoted pipeline or nothing: the commit must be
the record's, and the image the record's digest, found in this environment's repository (a digest names one
manifest, so the same digest is the same image whichever registry holds it). Otherwise the start is refused,
naming both digests.
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


@dataclass(frozen=True)
class Promoted:
    """What a promotion record fixes about the next environment's run."""

    digest: str  # sha256:<64 hex> of the image the evaluated execution ran
    git_sha: str
    execution_arn: str


def promoted_provenance(record: Mapping[str, Any]) -> Promoted:
    """The record's image digest, commit and execution; ValueError naming the field that is missing or malformed."""
    match = ECR_IMAGE.match(str(record.get("image_uri", "")))
    if not match or not match["digest"]:
        raise ValueError(f"promotion record image_uri {record.get('image_uri')!r} is not an ECR image pinned by digest")
    git_sha = str(record.get("git_sha", ""))
    if not GIT_COMMIT.match(git_sha):
        raise ValueError(f"promotion record git_sha {git_sha!r} is not a 40-character commit id")
    if record.get("decision") not in ("promoted", "released"):
        raise ValueError(f"promotion record decision {record.get('decision')!r} is not a promotion")
    return Promoted(match["digest"], git_sha, str(record.get("execution_arn", "")))


def promoted_image(ecr: Any, image_uri: str, promoted: Promoted) -> str:
    """This environment's repository, at the promoted digest; refuses when that image is not there."""
    match = ECR_IMAGE.match(image_uri)  # pinned_image's answer: always a pinned ECR URI
    if not match or not match["digest"]:
        raise PipelineStartError(f"{IMAGE_URI} {image_uri!r} is not pinned by digest")
    if match["digest"] == promoted.digest:
        return image_uri
    try:
        ecr.describe_images(
            registryId=match["account"], repositoryName=match["repo"], imageIds=[{"imageDigest": promoted.digest}]
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ImageNotFoundException":
            raise
        raise PipelineStartError(
            f"--promoted: image {promoted.digest} that {promoted.execution_arn} evaluated is not in "
            f"{match['registry']}/{match['repo']}, which holds {match['digest']} for this deployment; copy the "
            f"promoted image into this repository by digest, or start without --promoted"
        ) from None
    return f"{match['registry']}/{match['repo']}@{promoted.digest}"


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
    promoted: Promoted | None = None,
) -> StartedExecution:
    if not GIT_COMMIT.match(git_sha):
        raise PipelineStartError(f"{GIT_SHA} {git_sha!r} is not a 40-character commit id")
    if promoted and promoted.git_sha != git_sha:
        raise PipelineStartError(
            f"--promoted: the record is for commit {promoted.git_sha}, not {git_sha} being run; deploy that commit, "
            f"or start without --promoted"
        )
    name = pipeline_name(environment, variant)
    try:
        described = sagemaker.describe_pipeline(PipelineName=name)
        defaults = _defaults(described["PipelineDefinition"])
        image = pinned_image(ecr, overrides.get(IMAGE_URI) or defaults.get(IMAGE_URI, ""))
        description = f"commit {git_sha[:12]}"
        if promoted:
            image = promoted_image(ecr, image, promoted)
            description += f", promoted from {promoted.execution_arn}"
        values = start_values({**overrides, IMAGE_URI: image, GIT_SHA: git_sha})
        arn = sagemaker.start_pipeline_execution(
            PipelineName=name,
            PipelineParameters=values,
            PipelineExecutionDescription=description,
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
