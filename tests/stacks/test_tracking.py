"""Tracking stack: managed MLflow pinned per environment, artifacts under the artifact bucket, scoped role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stacks.config import IMAGE_LOCK, MLFLOW_CLIENTS, ConfigError, image_mlflow_client, load_app_config
from tests.stacks.conftest import ENVIRONMENTS, ROOT, cdk_context
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


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "-")):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_tracking_server_pairs_with_the_mlflow_client_the_processing_image_installs(templates, env):
    """SageMaker's table: server 3.0.x -> mlflow==3.0.0, 2.16.x -> 2.16.2, 2.13.x -> 2.13.2."""
    version = server(templates, env)["MlflowVersion"]
    assert MLFLOW_CLIENTS[version] == image_mlflow_client() == _pins(IMAGE_LOCK)["mlflow"]


def test_a_server_version_the_image_client_does_not_pair_with_is_refused_naming_both():
    context = cdk_context()
    context["ragops"]["environments"]["prod"]["tracking"]["mlflow_version"] = "2.16.2"
    with pytest.raises(ConfigError) as error:
        load_app_config(context)
    message = str(error.value)
    assert "ragops.environments.prod.tracking.mlflow_version" in message
    assert "tracking server 2.16.2 pairs with mlflow==2.16.2" in message
    assert "the processing image installs mlflow==3.0.0 (constraints-image.txt): use 3.0" in message


def test_the_image_runs_the_tested_libraries_except_where_its_mlflow_client_needs_older_ones():
    """Every direct pin of the pipeline reaches the image unchanged but mlflow's; the lock's other departures from
    constraints.txt are the packages mlflow 3.0.0 caps (named in the lock's header)."""
    direct, image, local = (
        _pins(ROOT / "processing" / "requirements.txt"),
        _pins(IMAGE_LOCK),
        _pins(ROOT / "constraints.txt"),
    )
    assert {name: image.get(name) for name in direct if name != "mlflow"} == {
        name: pin for name, pin in direct.items() if name != "mlflow"
    }
    assert direct["mlflow"] == local["mlflow"] != image["mlflow"]
    older = {name for name, pin in image.items() if name in local and local[name] != pin}
    assert older == {
        "mlflow",
        "mlflow-skinny",
        "gunicorn",
        "pandas",
        "pyarrow",
        "cachetools",
        "importlib-metadata",
        "protobuf",
        "packaging",
        "sqlalchemy",
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-semantic-conventions",
        "fastapi",
    }
    header = IMAGE_LOCK.read_text().split("\n\n", 1)[0]
    assert all(name.split("-")[0] in header.lower() for name in older - {"mlflow-skinny"})


def test_the_image_installs_requirements_without_their_mlflow_pin_and_mlflow_from_its_own_lock():
    dockerfile = (ROOT / "processing" / "Dockerfile").read_text()
    assert "grep -v '^mlflow==' requirements.txt > requirements-image.txt" in dockerfile
    assert "-r requirements-image.txt mlflow -c constraints-image.txt" in dockerfile
    assert "COPY processing/requirements.txt processing/constraints-image.txt ./" in dockerfile
