"""Tracking stack: managed MLflow pinned per environment, artifacts under the artifact bucket, scoped role."""

from __future__ import annotations

import pytest

from tests.stacks.conftest import ENVIRONMENTS
from tests.stacks.iam_checks import as_list, assert_least_privilege

SIZES = {"dev": "Small", "staging": "Small", "prod": "Medium"}


def server(templates, env: str) -> dict:
    (resource,) = templates[f"{env}/Tracking"].find_resources("AWS::SageMaker::MlflowTrackingServer").values()
    return resource["Properties"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_server_size_version_window_and_no_automatic_registration(templates, env):
    props = server(templates, env)
    assert props["TrackingServerName"] == f"ragops-{env}-mlflow"
    assert props["TrackingServerSize"] == SIZES[env]
    assert props["MlflowVersion"] == "3.0"
    assert props["WeeklyMaintenanceWindowStart"] == "Sun:03:00"
    assert props["AutomaticModelRegistration"] is False


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_artifact_store_is_the_mlflow_prefix_of_the_artifact_bucket(templates, env):
    account = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}[env]
    bucket = f"ragops-{env}-artifacts-{account}-us-east-1"
    assert server(templates, env)["ArtifactStoreUri"] == f"s3://{bucket}/mlflow"
    (artifacts,) = [
        b
        for b in templates[f"{env}/Storage"].find_resources("AWS::S3::Bucket").values()
        if b["Properties"].get("BucketName") == bucket
    ]
    assert artifacts["Properties"]["BucketEncryption"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_role_reaches_only_the_mlflow_prefix_and_the_project_key(templates, env):
    template = templates[f"{env}/Tracking"]
    assert_least_privilege(template)
    (role_id,) = template.find_resources("AWS::IAM::Role")
    assert server(templates, env)["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_action = {action: s for s in statements for action in as_list(s["Action"])}
    assert set(by_action) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
    }
    assert by_action["s3:PutObject"]["Resource"].endswith("-us-east-1/mlflow/*")
    assert by_action["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow", "mlflow/*"]}}
    assert "Storage" in str(by_action["kms:Decrypt"]["Resource"])


@pytest.mark.parametrize(("env", "policy"), [("dev", "Delete"), ("staging", "Delete"), ("prod", "Retain")])
def test_a_retained_environment_keeps_its_run_history_and_the_role_that_reads_it(templates, env, policy):
    template = templates[f"{env}/Tracking"]
    for kind in ("AWS::SageMaker::MlflowTrackingServer", "AWS::IAM::Role"):
        (resource,) = template.find_resources(kind).values()
        assert resource["DeletionPolicy"] == policy, kind
