"""Service-linked role wait against a botocore Stubber for IAM: the events the CDK provider framework sends, in order,
with IAM's documented answers (botocore's iam model: CreateServiceLinkedRole raises InvalidInput, GetRole
NoSuchEntity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from tests.lambda_handlers import load_handler

slr = load_handler("service_linked_role")

SERVICE = "opensearchservice.amazonaws.com"
ROLE = "AWSServiceRoleForAmazonOpenSearchService"
PROPERTIES = {"AWSServiceName": SERVICE, "RoleName": ROLE}
WAIT, SETTLE = timedelta(minutes=10), timedelta(minutes=2)
NOW = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture
def iam():
    client = boto3.client("iam", region_name="us-east-1")
    with Stubber(client) as stub:  # nothing queued unless a test queues it: any other call fails the test
        yield client, stub
        stub.assert_no_pending_responses()


def role(created: datetime) -> dict:
    arn = f"arn:aws:iam::123456789012:role/aws-service-role/{SERVICE}/{ROLE}"
    return {
        "Role": {
            "Path": f"/aws-service-role/{SERVICE}/",
            "RoleName": ROLE,
            "RoleId": "AROAEXAMPLEEXAMPLE123",
            "Arn": arn,
            "CreateDate": created,
        }
    }


def start(client, request_type: str = "Create") -> dict:
    request = {"RequestType": request_type, "ResourceProperties": PROPERTIES}
    return {**request, **slr.respond(request, client, WAIT, SETTLE, NOW)}


def poll(client, event: dict, minutes: float) -> dict:
    return slr.respond(event, client, WAIT, SETTLE, NOW + timedelta(minutes=minutes))


def test_a_new_role_is_waited_for_until_it_exists_and_has_settled(iam):
    client, stub = iam
    stub.add_response("create_service_linked_role", role(NOW), {"AWSServiceName": SERVICE})
    event = start(client)
    assert event["PhysicalResourceId"] == ROLE
    # Not visible yet (IAM's eventual consistency), then visible but too new, then settled.
    stub.add_client_error("get_role", "NoSuchEntity", http_status_code=404, expected_params={"RoleName": ROLE})
    assert poll(client, event, 0.25) == {"IsComplete": False}
    stub.add_response("get_role", role(NOW), {"RoleName": ROLE})
    assert poll(client, event, 1) == {"IsComplete": False}
    stub.add_response("get_role", role(NOW), {"RoleName": ROLE})
    assert poll(client, event, 2) == {"IsComplete": True}


def test_a_role_the_account_already_has_does_not_wait(iam):
    client, stub = iam
    stub.add_client_error(
        "create_service_linked_role",
        "InvalidInput",
        "Service role name AWSServiceRoleForAmazonOpenSearchService has been taken in this account",
        expected_params={"AWSServiceName": SERVICE},
    )
    event = start(client, "Update")
    stub.add_response("get_role", role(NOW - timedelta(days=400)), {"RoleName": ROLE})
    assert poll(client, event, 0) == {"IsComplete": True}


def test_a_role_that_never_appears_fails_the_deploy_at_the_deadline_naming_it(iam):
    client, stub = iam
    stub.add_client_error(
        "create_service_linked_role", "InvalidInput", "bad input", expected_params={"AWSServiceName": SERVICE}
    )
    event = start(client)
    stub.add_client_error("get_role", "NoSuchEntity", http_status_code=404, expected_params={"RoleName": ROLE})
    with pytest.raises(RuntimeError, match=f"{ROLE} does not exist after 0:10:00"):
        poll(client, event, 10)


def test_other_iam_errors_fail_at_once(iam):
    client, stub = iam
    stub.add_client_error("create_service_linked_role", "LimitExceeded", expected_params={"AWSServiceName": SERVICE})
    with pytest.raises(slr.ClientError, match="LimitExceeded"):
        start(client)


def test_delete_leaves_the_account_wide_role_alone(iam):
    client, _ = iam
    event = start(client, "Delete")  # and no IAM call: none was queued
    assert poll(client, event, 0) == {"IsComplete": True}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("not a request", "expected a CloudFormation request"),
        ({"RequestType": "Create", "ResourceProperties": {**PROPERTIES, "AWSServiceName": "*"}}, "AWSServiceName"),
        ({"RequestType": "Create", "ResourceProperties": {**PROPERTIES, "RoleName": "Admin"}}, "RoleName"),
    ],
)
def test_bad_requests_are_refused_before_any_call(iam, event, message):
    client, _ = iam
    with pytest.raises(slr.RoleError, match=message):
        slr.respond(event, client, WAIT, SETTLE, NOW)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RAGOPS_SLR_SETTLE_SECONDS": "120"}, "RAGOPS_SLR_WAIT_MINUTES"),
        ({"RAGOPS_SLR_WAIT_MINUTES": "10", "RAGOPS_SLR_SETTLE_SECONDS": "x"}, "RAGOPS_SLR_SETTLE_SECONDS"),
        ({"RAGOPS_SLR_WAIT_MINUTES": "2", "RAGOPS_SLR_SETTLE_SECONDS": "600"}, "shorter"),
    ],
)
def test_bad_configuration_names_the_variable(environ, message):
    with pytest.raises(slr.RoleError, match=message):
        slr.timing_from(environ)


def test_configuration_as_the_stack_sets_it():
    assert slr.timing_from({"RAGOPS_SLR_WAIT_MINUTES": "10", "RAGOPS_SLR_SETTLE_SECONDS": "120"}) == (WAIT, SETTLE)
