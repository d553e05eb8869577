from __future__ import annotations

import boto3
import pytest

from processing.backends.aws_session import arn_region, opensearch_endpoint_region, preflight
from processing.backends.errors import CloudBackendError
from processing.tracking_uri import is_managed_tracking_uri, managed_tracking_uri
from tests.processing.cloud.conftest import fake_session

SERVER_ARN = "arn:aws:sagemaker:us-east-1:111111111111:mlflow-tracking-server/ragops-dev"


@pytest.mark.usefixtures("no_instance_metadata")
def test_no_credentials_fails_fast_naming_the_selection() -> None:
    with pytest.raises(CloudBackendError) as raised:
        preflight("embeddings=sagemaker", region="us-east-1", required={"embedding_endpoint": "ragops-dev-embedding"})
    assert str(raised.value) == (
        "embeddings=sagemaker needs AWS credentials: none found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and"
        " AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached)"
    )


@pytest.mark.usefixtures("no_instance_metadata")
def test_unknown_profile_is_a_credentials_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    expected = r"judge=bedrock needs AWS credentials: resolving them failed: .*nobody"
    with pytest.raises(CloudBackendError, match=expected):
        preflight("judge=bedrock", region="us-east-1", required={})


def test_missing_endpoint_name_is_reported_before_credentials_are_looked_up() -> None:
    with pytest.raises(CloudBackendError, match=r"^embeddings=sagemaker needs embedding_endpoint: it is not set$"):
        preflight("embeddings=sagemaker", region="us-east-1", required={"embedding_endpoint": " "})


def test_region_comes_from_the_config_or_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    assert preflight("judge=bedrock", region="eu-west-1", required={}, session=fake_session()).region == "eu-west-1"
    assert preflight("judge=bedrock", region=None, required={}, session=fake_session("us-west-2")).region == "us-west-2"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    no_region = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    with pytest.raises(CloudBackendError, match="judge=bedrock needs an AWS region: none configured"):
        preflight("judge=bedrock", region=None, required={}, session=no_region)


def test_resource_in_another_region_is_refused() -> None:
    endpoint = "https://vpc-ragops-dev-abc123.eu-west-1.es.amazonaws.com"
    with pytest.raises(CloudBackendError) as raised:
        preflight(
            "vector_store=opensearch",
            region="us-east-1",
            required={"opensearch_endpoint": endpoint},
            resource_regions={f"OpenSearch domain {endpoint}": opensearch_endpoint_region(endpoint)},
            session=fake_session(),
        )
    assert str(raised.value) == (
        f"vector_store=opensearch: OpenSearch domain {endpoint} is in eu-west-1 but the configured region is us-east-1"
    )


def test_context_builds_clients_in_its_region_with_botocore_retries_off() -> None:
    context = preflight("embeddings=sagemaker", region="eu-west-1", required={}, session=fake_session())
    client = context.client("sagemaker-runtime")
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries["total_max_attempts"] == 1


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("https://search-ragops-dev-abc.us-east-1.es.amazonaws.com", "us-east-1"),
        ("vpc-ragops-prod-xyz.ap-southeast-2.es.amazonaws.com", "ap-southeast-2"),
        ("http://localhost:9200", None),
    ],
)
def test_opensearch_endpoint_region(endpoint: str, region: str | None) -> None:
    assert opensearch_endpoint_region(endpoint) == region


def test_arn_region() -> None:
    assert arn_region(SERVER_ARN) == "us-east-1"
    assert arn_region("arn:aws:iam::111111111111:role/x") is None


def test_managed_tracking_uri_is_the_validated_arn() -> None:
    assert is_managed_tracking_uri(SERVER_ARN)
    assert not is_managed_tracking_uri("sqlite:///mlruns.db")
    assert managed_tracking_uri(SERVER_ARN, region="us-east-1") == SERVER_ARN


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ragops-dev",
        "arn:aws:sagemaker:us-east-1:1111:mlflow-tracking-server/ragops-dev",
        "arn:aws:sagemaker:us-east-1:111111111111:mlflow-tracking-server/-bad",
    ],
)
def test_malformed_tracking_arn_names_the_expected_format(arn: str) -> None:
    with pytest.raises(CloudBackendError, match="mlflow-tracking-server/<name>"):
        managed_tracking_uri(arn, region="us-east-1")


def test_tracking_server_in_another_region_is_refused() -> None:
    with pytest.raises(CloudBackendError, match="'ragops-dev' is in us-east-1 but the configured region is eu-west-1"):
        managed_tracking_uri(SERVER_ARN, region="eu-west-1")
