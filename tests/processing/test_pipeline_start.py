"""Starting a deployed pipeline: parameters from run-config fields, image pinned by digest, clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from processing.pipelines.parameters import (
    declare,
    parameter_name,
    pipeline_name,
    portable_overrides,
    run_parameters,
    start_values,
)
from processing.pipelines.start import (
    PipelineStartError,
    Promoted,
    pinned_image,
    promoted_provenance,
    start_execution,
)

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = "111111111111.dkr.ecr.us-east-1.amazonaws.com"
REPO = "cdk-hnb659fds-container-assets-111111111111-us-east-1"
TAG = "0" * 64
DIGEST = "sha256:" + "ab" * 32
SHA = "c" * 40
ARN = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/ragops-dev-single/execution/abc123"


@pytest.fixture
def clients():
    sagemaker = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    ecr = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(sagemaker) as sm_stub, Stubber(ecr) as ecr_stub:
        yield sagemaker, ecr, sm_stub, ecr_stub
        sm_stub.assert_no_pending_responses()
        ecr_stub.assert_no_pending_responses()


def deployed_definition() -> str:
    return json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": declare({"experiment_name": "ragops-dev-pipeline", "ImageUri": f"{REGISTRY}/{REPO}:{TAG}"}),
        }
    )


def test_names_and_types_follow_the_run_config():
    assert pipeline_name("dev", "multi") == "ragops-dev-multi"
    assert parameter_name("hnsw_ef_search") == "HnswEfSearch"
    kinds = {p.field: p.kind for p in run_parameters()}
    assert kinds["chunk_size"] == "Integer"
    assert kinds["relevance_threshold"] == "Float"
    assert kinds["chunking_strategy"] == "String"


def test_unknown_variant_and_bad_overrides_are_refused():
    with pytest.raises(ValueError, match="variant"):
        pipeline_name("dev", "both")
    with pytest.raises(ValueError, match="--set colour"):
        start_values({"colour": "blue"})
    with pytest.raises(ValueError, match="chunk_size"):
        start_values({"chunk_size": "many"})


def test_start_pins_the_default_image_by_digest_and_passes_overrides(clients):
    sagemaker, ecr, sm_stub, ecr_stub = clients
    name = "ragops-dev-single"
    sm_stub.add_response(
        "describe_pipeline",
        {"PipelineName": name, "PipelineDefinition": deployed_definition()},
        {"PipelineName": name},
    )
    ecr_stub.add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": DIGEST}]},
        {"registryId": "111111111111", "repositoryName": REPO, "imageIds": [{"imageTag": TAG}]},
    )
    sm_stub.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": ARN},
        {
            "PipelineName": name,
            "PipelineParameters": [
                {"Name": "ChunkSize", "Value": "500"},
                {"Name": "ImageUri", "Value": f"{REGISTRY}/{REPO}@{DIGEST}"},
                {"Name": "GitSha", "Value": SHA},
            ],
            "PipelineExecutionDescription": f"commit {SHA[:12]}",
        },
    )
    started = start_execution(
        sagemaker, ecr, environment="dev", variant="single", overrides={"chunk_size": "500"}, git_sha=SHA
    )
    assert started.arn == ARN
    assert started.experiment == "ragops-dev-pipeline"
    assert started.image_uri.endswith(DIGEST)


def test_missing_pipeline_is_one_clear_error(clients):
    sagemaker, ecr, sm_stub, _ = clients
    sm_stub.add_client_error("describe_pipeline", "ResourceNotFound", "Pipeline does not exist")
    with pytest.raises(PipelineStartError, match="ragops-staging-multi: ResourceNotFound"):
        start_execution(sagemaker, ecr, environment="staging", variant="multi", overrides={}, git_sha=SHA)


def test_commit_must_be_a_full_sha(clients):
    sagemaker, ecr, _, _ = clients
    with pytest.raises(PipelineStartError, match="GitSha"):
        start_execution(sagemaker, ecr, environment="dev", variant="single", overrides={}, git_sha="main")


def test_image_without_a_single_digest_is_refused(clients):
    _, ecr, _, ecr_stub = clients
    ecr_stub.add_response("describe_images", {"imageDetails": []})
    with pytest.raises(PipelineStartError, match="no single image"):
        pinned_image(ecr, f"{REGISTRY}/{REPO}:{TAG}")
    with pytest.raises(PipelineStartError, match="not an ECR image URI"):
        pinned_image(ecr, "docker.io/library/python:3.11")
    assert pinned_image(ecr, f"{REGISTRY}/{REPO}@{DIGEST}") == f"{REGISTRY}/{REPO}@{DIGEST}"


def test_cli_without_credentials_exits_non_zero_with_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "processing",
            "pipeline",
            "start",
            "--env",
            "dev",
            "--region",
            "us-east-1",
            "--git-sha",
            SHA,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no AWS credentials found (set AWS_PROFILE or run where a role is attached)"


def test_promoted_run_config_drops_environment_bound_fields_and_round_trips_types():
    record = {
        "run_config": {
            "chunk_size": 500,
            "relevance_threshold": 0.25,
            "prune_contexts": True,
            "opensearch_endpoint": "vpc-ragops-dev.us-east-1.es.amazonaws.com",
            "min_mrr": 0.7,
        }
    }
    overrides = portable_overrides(record)
    assert overrides == {"chunk_size": "500", "relevance_threshold": "0.25", "prune_contexts": "true"}
    assert {v["Name"]: v["Value"] for v in start_values(overrides)} == {
        "ChunkSize": "500",
        "RelevanceThreshold": "0.25",
        "PruneContexts": "true",
    }


@pytest.mark.parametrize(
    ("record", "message"),
    [({"decision": "promoted"}, "no run_config"), ({"run_config": {"colour": "blue"}}, "unknown field\\(s\\): colour")],
)
def test_bad_promotion_records_are_refused(record, message):
    with pytest.raises(ValueError, match=message):
        portable_overrides(record)


def test_cli_names_the_promotion_file_it_cannot_use(tmp_path):
    record = tmp_path / "promoted.json"
    record.write_text('{"decision": "promoted"}')
    result = subprocess.run(
        [sys.executable, "-m", "processing", "pipeline", "start", "--env", "dev", "--promoted", str(record)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: --promoted {record}: promotion record has no run_config object"


PROMOTED_DIGEST = "sha256:" + "cd" * 32
DEV_EXECUTION = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/ragops-dev-single/execution/dev123"
STAGING = "222222222222.dkr.ecr.us-east-1.amazonaws.com"
STAGING_REPO = "cdk-hnb659fds-container-assets-222222222222-us-east-1"


def promotion_record(**changes) -> dict:
    return {
        "decision": "promoted",
        "execution_arn": DEV_EXECUTION,
        "image_uri": f"{REGISTRY}/{REPO}@{PROMOTED_DIGEST}",
        "git_sha": SHA,
        "run_config": {"chunk_size": 500},
        **changes,
    }


def staging_deployment(sm_stub, ecr_stub) -> None:
    """Staging's definition defaults to its own build of the commit, whose digest differs from dev's."""
    definition = json.dumps(
        {"Version": "2020-12-01", "Parameters": declare({"ImageUri": f"{STAGING}/{STAGING_REPO}:{TAG}"})}
    )
    name = "ragops-staging-single"
    sm_stub.add_response("describe_pipeline", {"PipelineName": name, "PipelineDefinition": definition})
    ecr_stub.add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": DIGEST}]},
        {"registryId": "222222222222", "repositoryName": STAGING_REPO, "imageIds": [{"imageTag": TAG}]},
    )


def test_a_promoted_run_runs_the_promoted_digest_and_commit(clients):
    sagemaker, ecr, sm_stub, ecr_stub = clients
    staging_deployment(sm_stub, ecr_stub)
    ecr_stub.add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": PROMOTED_DIGEST}]},
        {"registryId": "222222222222", "repositoryName": STAGING_REPO, "imageIds": [{"imageDigest": PROMOTED_DIGEST}]},
    )
    sm_stub.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": ARN},
        {
            "PipelineName": "ragops-staging-single",
            "PipelineParameters": [
                {"Name": "ChunkSize", "Value": "500"},
                {"Name": "ImageUri", "Value": f"{STAGING}/{STAGING_REPO}@{PROMOTED_DIGEST}"},
                {"Name": "GitSha", "Value": SHA},
            ],
            "PipelineExecutionDescription": f"commit {SHA[:12]}, promoted from {DEV_EXECUTION}",
        },
    )
    record = promotion_record()
    started = start_execution(
        sagemaker,
        ecr,
        environment="staging",
        variant="single",
        overrides=portable_overrides(record),
        git_sha=SHA,
        promoted=promoted_provenance(record),
    )
    assert started.image_uri == f"{STAGING}/{STAGING_REPO}@{PROMOTED_DIGEST}"


def test_a_promoted_image_this_environment_lacks_is_refused_naming_both_digests(clients):
    sagemaker, ecr, sm_stub, ecr_stub = clients
    staging_deployment(sm_stub, ecr_stub)
    ecr_stub.add_client_error("describe_images", "ImageNotFoundException", "no such image")
    with pytest.raises(PipelineStartError, match=f"image {PROMOTED_DIGEST} that {DEV_EXECUTION} .* holds {DIGEST}"):
        start_execution(
            sagemaker,
            ecr,
            environment="staging",
            variant="single",
            overrides={},
            git_sha=SHA,
            promoted=promoted_provenance(promotion_record()),
        )


def test_a_promotion_of_another_commit_is_refused_before_any_call(clients):
    sagemaker, ecr, _, _ = clients
    promoted = Promoted(PROMOTED_DIGEST, "d" * 40, DEV_EXECUTION)
    with pytest.raises(PipelineStartError, match=f"record is for commit {'d' * 40}, not {SHA}"):
        start_execution(
            sagemaker, ecr, environment="staging", variant="single", overrides={}, git_sha=SHA, promoted=promoted
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_uri": f"{REGISTRY}/{REPO}:{TAG}"}, "image_uri .* is not an ECR image pinned by digest"),
        ({"git_sha": "main"}, "git_sha 'main' is not a 40-character commit id"),
        ({"decision": "rejected"}, "decision 'rejected' is not a promotion"),
    ],
)
def test_a_record_without_exact_provenance_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        promoted_provenance(promotion_record(**changes))
