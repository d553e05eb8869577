"""On-demand endpoints: a run creates, waits for or updates the endpoint; failures name it; nothing else is called."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from processing.backends import cloud
from processing.backends.errors import CloudBackendError
from processing.backends.on_demand import OnDemandEndpoint, ensure_in_service
from processing.config import ConfigError, load_config
from processing.context import Backends
from tests.processing.cloud.conftest import fake_session

ENDPOINT = OnDemandEndpoint("ragops-staging-llm", "LlmConfig-AbC123", "staging")
# The creator tag is what lets the clean-up hook delete the endpoint later (lambda/cleanup/inventory.py).
TAGS = [
    {"Key": "ragops:project", "Value": "ragops"},
    {"Key": "ragops:environment", "Value": "staging"},
    {"Key": "ragops:created-by", "Value": "processing.backends.on_demand"},
]
ON_DEMAND_RUN = {
    "aws_region": "us-east-1",
    "embeddings": "sagemaker",
    "sagemaker_embedding_endpoint": "ragops-staging-embedding",
    "sagemaker_embedding_endpoint_config": "EmbeddingConfig-XyZ789",
    "environment_name": "staging",
}


def described(status: str, config: str = ENDPOINT.config_name, **extra: Any) -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT.name,
        "EndpointArn": "arn:aws:sagemaker:us-east-1:222222222222:endpoint/ragops-staging-llm",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": "2026-12-02T10:00:00Z",
        "LastModifiedTime": "2026-12-02T10:00:00Z",
        **extra,
    }


def polled(stubber: Stubber, *statuses: str) -> None:
    """The waiter's DescribeEndpoint answers, in order."""
    for status in statuses:
        stubber.add_response("describe_endpoint", described(status))


def missing(stubber: Stubber) -> None:
    stubber.add_client_error(
        "describe_endpoint",
        "ValidationException",
        'Could not find endpoint "ragops-staging-llm".',
        expected_params={"EndpointName": ENDPOINT.name},
    )


@pytest.fixture
def sagemaker():
    client = fake_session().client("sagemaker")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_a_missing_endpoint_is_created_from_its_config_with_the_clean_up_tags_and_waited_for(sagemaker):
    client, stubber = sagemaker
    missing(stubber)
    stubber.add_response(
        "create_endpoint",
        {"EndpointArn": described("Creating")["EndpointArn"]},
        {"EndpointName": ENDPOINT.name, "EndpointConfigName": ENDPOINT.config_name, "Tags": TAGS},
    )
    polled(stubber, "Creating", "InService")
    assert ensure_in_service(client, ENDPOINT, poll_seconds=0) == "created from LlmConfig-AbC123"


def test_an_endpoint_in_service_on_its_config_is_used_as_it_is(sagemaker):
    client, stubber = sagemaker
    polled(stubber, "InService", "InService")
    assert ensure_in_service(client, ENDPOINT, poll_seconds=0) == "in service"


def test_an_endpoint_on_the_config_of_an_earlier_deploy_moves_to_the_current_one(sagemaker):
    client, stubber = sagemaker
    stubber.add_response("describe_endpoint", described("InService", config="LlmConfig-Old000"))
    stubber.add_response(
        "update_endpoint",
        {"EndpointArn": described("Updating")["EndpointArn"]},
        {"EndpointName": ENDPOINT.name, "EndpointConfigName": ENDPOINT.config_name},
    )
    polled(stubber, "Updating", "InService")
    assert ensure_in_service(client, ENDPOINT, poll_seconds=0) == "updated from LlmConfig-Old000 to LlmConfig-AbC123"


def test_an_endpoint_still_being_deleted_is_waited_out_then_created_again(sagemaker):
    client, stubber = sagemaker
    polled(stubber, "Deleting", "Deleting")
    missing(stubber)  # the deleted waiter's success
    stubber.add_response("create_endpoint", {"EndpointArn": described("Creating")["EndpointArn"]})
    stubber.add_response("describe_endpoint", described("InService"))
    assert ensure_in_service(client, ENDPOINT, poll_seconds=0).startswith("created")


def test_an_endpoint_another_run_created_a_moment_ago_is_waited_for(sagemaker):
    client, stubber = sagemaker
    missing(stubber)
    stubber.add_client_error(
        "create_endpoint",
        "ValidationException",
        f'Cannot create already existing endpoint "{described("Creating")["EndpointArn"]}".',
    )
    stubber.add_response("describe_endpoint", described("InService"))
    assert ensure_in_service(client, ENDPOINT, poll_seconds=0) == "created by another run"


def test_a_failed_endpoint_is_reported_with_its_reason_and_nothing_is_created(sagemaker):
    client, stubber = sagemaker
    stubber.add_response("describe_endpoint", described("Failed", FailureReason="insufficient capacity"))
    with pytest.raises(CloudBackendError, match=r"ragops-staging-llm is Failed \(insufficient capacity\)"):
        ensure_in_service(client, ENDPOINT, poll_seconds=0)


def test_an_endpoint_that_fails_while_coming_up_names_the_status_and_reason(sagemaker):
    client, stubber = sagemaker
    missing(stubber)
    stubber.add_response("create_endpoint", {"EndpointArn": described("Creating")["EndpointArn"]})
    stubber.add_response("describe_endpoint", described("Failed", FailureReason="model container did not pass ping"))
    with pytest.raises(CloudBackendError, match=r"did not become in service .* status Failed .*did not pass ping"):
        ensure_in_service(client, ENDPOINT, poll_seconds=0)


def test_an_endpoint_that_stays_creating_past_the_wait_is_an_error_not_a_hang(sagemaker):
    client, stubber = sagemaker
    polled(stubber, *["Creating"] * 4)
    with pytest.raises(CloudBackendError, match="within 0 min: status Creating"):
        ensure_in_service(client, ENDPOINT, poll_seconds=0, max_polls=3)


def test_refused_creation_names_the_endpoint_and_the_service_error(sagemaker):
    client, stubber = sagemaker
    missing(stubber)
    stubber.add_client_error("create_endpoint", "AccessDeniedException", "not authorized to perform CreateEndpoint")
    with pytest.raises(CloudBackendError, match=r"ragops-staging-llm: CreateEndpoint failed: .*AccessDenied"):
        ensure_in_service(client, ENDPOINT, poll_seconds=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"environment_name": ""}, "sagemaker_embedding_endpoint_config needs environment_name"),
        ({"embeddings": "local", "sagemaker_embedding_endpoint": ""}, "applies only to embeddings=sagemaker"),
        ({"generator_endpoint_config": "LlmConfig-AbC123"}, "generator_endpoint_config applies only to generator"),
        ({"sagemaker_embedding_endpoint_config": "bad name!"}, "sagemaker_embedding_endpoint_config"),
    ],
)
def test_on_demand_settings_are_checked_with_the_rest_of_the_run_config(changes, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides={**ON_DEMAND_RUN, **changes})


def test_the_embedder_is_brought_up_once_before_it_is_built(monkeypatch):
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(cloud, "bring_up_endpoint", lambda config, role: calls.append(("up", role)))
    monkeypatch.setattr(
        "processing.backends.factory.build_embedder", lambda config: calls.append(("build", "embeddings")) or object()
    )
    backends = Backends(load_config(overrides=ON_DEMAND_RUN))
    backends.embedder()
    backends.embedder()
    assert calls == [("up", "embeddings"), ("build", "embeddings")]


def test_without_an_endpoint_config_nothing_is_called(monkeypatch):
    monkeypatch.setattr(cloud, "_aws", lambda *a, **k: pytest.fail("no AWS client for an always-on endpoint"))
    config = load_config(overrides={**ON_DEMAND_RUN, "sagemaker_embedding_endpoint_config": "", "environment_name": ""})
    cloud.bring_up_endpoint(config, "embeddings")
