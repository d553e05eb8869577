"""Interface drain against a botocore Stubber for EC2: the events the CDK provider framework sends, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from tests.lambda_handlers import REGION, load_handler

drain = load_handler("eni_drain")

GROUP = "sg-0123456789abcdef0"
WAIT = timedelta(minutes=25)
NOW = datetime(2026, 1, 2, tzinfo=UTC)
DELETE = {"RequestType": "Delete", "PhysicalResourceId": GROUP, "ResourceProperties": {"SecurityGroupId": GROUP}}
FILTERS = [{"Name": "group-id", "Values": [GROUP]}]


@pytest.fixture
def ec2():
    client = boto3.client("ec2", region_name=REGION)
    with Stubber(client) as stub:  # nothing queued unless a test queues it: any other call fails the test
        yield client, stub
        stub.assert_no_pending_responses()


def interfaces_page(*ids: str, next_token: str | None = None) -> dict:
    page = {"NetworkInterfaces": [{"NetworkInterfaceId": i, "Status": "in-use"} for i in ids]}
    return {**page, "NextToken": next_token} if next_token else page


def start(ec2_client, request: dict) -> dict:
    """On-event, then the event every is-complete call receives: the request plus on-event's answer."""
    return {**request, **drain.drain(request, ec2_client, WAIT, NOW)}


def poll(ec2_client, event: dict, minutes: float) -> dict:
    return drain.drain(event, ec2_client, WAIT, NOW + timedelta(minutes=minutes))


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_do_nothing(ec2, request_type):
    client, _ = ec2
    event = start(client, {"RequestType": request_type, "ResourceProperties": {"SecurityGroupId": GROUP}})
    assert event["PhysicalResourceId"] == GROUP
    assert event["Waiting"] == {"deadline": None}
    assert poll(client, event, 0) == {"IsComplete": True}  # and no EC2 call: none was queued


def test_delete_completes_once_the_interfaces_are_gone(ec2):
    client, stub = ec2
    event = start(client, DELETE)
    stub.add_response("describe_network_interfaces", interfaces_page("eni-1", next_token="more"), {"Filters": FILTERS})
    stub.add_response(
        "describe_network_interfaces", interfaces_page("eni-2"), {"Filters": FILTERS, "NextToken": "more"}
    )
    assert poll(client, event, 1) == {"IsComplete": False}

    stub.add_response("describe_network_interfaces", interfaces_page("eni-2"), {"Filters": FILTERS})
    assert poll(client, event, 5) == {"IsComplete": False}

    stub.add_response("describe_network_interfaces", interfaces_page(), {"Filters": FILTERS})
    assert poll(client, event, 9) == {"IsComplete": True}


def test_delete_fails_naming_the_interfaces_still_there_after_the_wait(ec2):
    client, stub = ec2
    event = start(client, DELETE)
    stub.add_response("describe_network_interfaces", interfaces_page("eni-2", "eni-1"), {"Filters": FILTERS})
    assert poll(client, event, 24) == {"IsComplete": False}

    stub.add_response("describe_network_interfaces", interfaces_page("eni-2", "eni-1"), {"Filters": FILTERS})
    with pytest.raises(
        RuntimeError, match=f"security group {GROUP} still has network interfaces after 0:25:00: eni-1, eni-2"
    ):
        poll(client, event, 25)


def test_a_failed_describe_fails_the_delete(ec2):
    client, stub = ec2
    event = start(client, DELETE)
    stub.add_client_error("describe_network_interfaces", "UnauthorizedOperation", expected_params={"Filters": FILTERS})
    with pytest.raises(client.exceptions.ClientError, match="UnauthorizedOperation"):
        poll(client, event, 1)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "expected a CloudFormation request"),
        ({"RequestType": "Destroy"}, "expected a CloudFormation request"),
        ({"RequestType": "Create", "ResourceProperties": {}}, "ResourceProperties.SecurityGroupId"),
        ({"RequestType": "Delete", "PhysicalResourceId": "vpc-1"}, "PhysicalResourceId: expected a security group"),
    ],
)
def test_bad_events_are_refused_before_any_call(ec2, event, message):
    client, _ = ec2
    with pytest.raises(drain.DrainError, match=message):
        drain.drain(event, client, WAIT, NOW)


@pytest.mark.parametrize("value", ["", "0", "60", "ten"])
def test_the_wait_must_stay_under_cloudformations_hour(value):
    with pytest.raises(drain.DrainError, match="RAGOPS_DRAIN_WAIT_MINUTES"):
        drain.wait_from({"RAGOPS_DRAIN_WAIT_MINUTES": value})
    assert drain.wait_from({"RAGOPS_DRAIN_WAIT_MINUTES": "25"}) == WAIT


@pytest.mark.parametrize(
    "waiting",
    [{"deadline": "tomorrow"}, {"deadline": "2026-01-02T00:00:00"}, {"deadline": 5}, {}, "2026-01-02T00:00:00+00:00"],
)
def test_a_malformed_deadline_is_refused_by_name_not_as_a_bare_value_error(ec2, waiting):
    client, _ = ec2
    with pytest.raises(drain.DrainError, match=r"Waiting(\.deadline)?: expected"):
        drain.drain({**DELETE, "Waiting": waiting}, client, WAIT, NOW)
