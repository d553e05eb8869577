"""Stack delete through the CDK provider framework: on-event once, then is-complete every poll until it says so.

Each test sends the events the framework sends: the CloudFormation request, then that request merged with
on-event's answer. SageMaker's own pace (an endpoint still Creating or Deleting) is set in moto's backend between
polls; pipeline executions, which moto lacks, come from a Stubber.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.lambda_cleanup import (
    DELETE,
    DELETE_WAIT_MINUTES,
    PHYSICAL_ID,
    PIPELINE,
    PIPELINE_ARN,
    ROLE,
    NullSns,
    PipelineOnly,
    before,
    cleanup,
    execution,
    fail_when,
    finish_deleting,
    names,
    running_executions,
    serve,
    set_endpoint_status,
    settings,
    stack_in,
    stack_tags,
    tags,
    vanish_before,
)
from tests.lambda_handlers import REGION

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def start(clients, request: dict = DELETE, *, dry_run: bool = False) -> dict:
    """On-event, then the event every is-complete call receives: the request plus on-event's answer."""
    answer = cleanup.clean_up(request, settings(dry_run), clients, NOW)
    assert answer["PhysicalResourceId"] == PHYSICAL_ID
    return {**request, **answer}


def poll(clients, event: dict, minutes: float = 1) -> dict:
    return cleanup.clean_up(event, settings(), clients, NOW + timedelta(minutes=minutes))


def only_the_stacks_parts_left(clients, *served: str) -> bool:
    """No endpoint is left, and the served endpoints' configs and models are: those are a stack's, which deletes
    them itself."""
    return names(clients) == {"endpoints": set(), "configs": set(served), "models": set(served)}


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_do_nothing_and_are_complete_at_once(clients, request_type):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    before = names(clients)
    event = start(clients, {"RequestType": request_type, "PhysicalResourceId": PHYSICAL_ID})
    assert event["Waiting"] == {"deadline": None}
    assert poll(clients, event) == {"IsComplete": True}
    assert names(clients) == before


@pytest.mark.parametrize(
    "status",
    ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"],
)
def test_a_delete_outside_the_stacks_own_deletion_deletes_and_stops_nothing(status):
    """A replaced or renamed custom resource, or a rolled-back create: the environment keeps running."""
    untouched = [boto3.client(name, region_name=REGION) for name in ("sagemaker", "resourcegroupstaggingapi")]
    for client in untouched:
        Stubber(client).activate()  # nothing queued: any SageMaker or tagging call fails the test
    clients = cleanup.Clients(*untouched, cloudwatch=None, sns=NullSns(), cloudformation=stack_in(status))

    event = start(clients)

    assert event["Waiting"] == {"deadline": None}
    assert poll(clients, event) == {"IsComplete": True}
    assert clients.sns.messages == []


def test_stack_delete_removes_runtime_resources_but_not_stack_owned_or_other_environments(clients):
    serve(clients.sagemaker, "dev-new", tags("dev"))
    serve(clients.sagemaker, "staging-new", tags("staging"))
    serve(clients.sagemaker, "dev-stack", stack_tags("dev"))
    event = start(clients)
    assert names(clients)["endpoints"] == {"dev-new", "staging-new", "dev-stack"}  # on-event only decides

    assert poll(clients, event) == {"IsComplete": False}  # dev-new was just asked to delete: it is Deleting
    assert poll(clients, event, minutes=2) == {"IsComplete": True}
    assert names(clients)["endpoints"] == {"staging-new", "dev-stack"}
    assert names(clients)["configs"] == names(clients)["models"] == {"dev-new", "staging-new", "dev-stack"}


def test_an_endpoint_still_deleting_keeps_the_delete_incomplete(clients):
    serve(clients.sagemaker, "dev-old", tags("dev"))
    set_endpoint_status("dev-old", "Deleting")
    event = start(clients)

    assert poll(clients, event) == {"IsComplete": False}

    finish_deleting("dev-old")
    assert poll(clients, event, minutes=5) == {"IsComplete": True}
    assert only_the_stacks_parts_left(clients, "dev-old")


def test_a_creating_endpoint_is_deleted_once_sagemaker_allows_it(clients):
    serve(clients.sagemaker, "dev-starting", tags("dev"))
    set_endpoint_status("dev-starting", "Creating")
    event = start(clients)

    assert poll(clients, event) == {"IsComplete": False}
    assert names(clients)["endpoints"] == {"dev-starting"}  # DeleteEndpoint is refused while Creating

    set_endpoint_status("dev-starting", "InService")
    assert poll(clients, event, minutes=10) == {"IsComplete": False}  # now deleting
    assert poll(clients, event, minutes=11) == {"IsComplete": True}
    assert only_the_stacks_parts_left(clients, "dev-starting")


def test_an_execution_still_stopping_keeps_the_delete_incomplete():
    stubbed = PipelineOnly()
    event = start(stubbed.clients)
    stubbed.expect_pass(running_executions(NOW), stops=["stale", "fresh"])
    assert poll(stubbed.clients, event) == {"IsComplete": False}

    stale_stopping = execution("stale", "Stopping", NOW - timedelta(hours=7))
    stubbed.expect_pass([stale_stopping, execution("fresh", "Stopped", NOW)], stops=[])  # no second stop
    assert poll(stubbed.clients, event, minutes=2) == {"IsComplete": False}

    stubbed.expect_pass([execution("stale", "Stopped", NOW), execution("fresh", "Stopped", NOW)], stops=[])
    assert poll(stubbed.clients, event, minutes=3) == {"IsComplete": True}
    stubbed.assert_all_called()
    assert len(stubbed.clients.sns.messages) == 1  # the pass that stopped something; waiting notifies nobody


def test_the_delete_fails_naming_what_still_bills_when_the_wait_runs_out(clients):
    serve(clients.sagemaker, "dev-old", tags("dev"))
    set_endpoint_status("dev-old", "Deleting")
    event = start(clients)

    assert poll(clients, event, minutes=DELETE_WAIT_MINUTES - 1) == {"IsComplete": False}
    with pytest.raises(
        RuntimeError, match=r"did not finish in 40 minutes; still billing: endpoint dev-old \(Deleting\)"
    ):
        poll(clients, event, minutes=DELETE_WAIT_MINUTES)


def test_a_failed_stop_fails_the_delete_naming_what_still_runs():
    stubbed = PipelineOnly()
    event = start(stubbed.clients)
    stubbed.expect_pass(running_executions(NOW), stops=[])
    for _ in range(2):
        stubbed.sagemaker.add_client_error("stop_pipeline_execution", "ResourceNotFound", expected_params=None)

    with pytest.raises(RuntimeError, match="clean-up failed for 2 resource") as failure:
        poll(stubbed.clients, event)
    assert f"still billing: pipeline-execution {PIPELINE_ARN}/execution/stale (Executing)" in str(failure.value)


def test_a_failed_read_fails_the_delete_after_the_rest_of_the_pass(clients):
    serve(clients.sagemaker, "dev-new", tags("dev"))
    clients.sagemaker.create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn=ROLE,
        Tags=tags("dev", created_by=None),  # as the stack tags its pipeline
    )
    fail_when(clients.sagemaker, "ListPipelineExecutions", lambda p: True)
    event = start(clients)

    with pytest.raises(RuntimeError, match=r"failed for 1 resource.*list_pipeline_executions: ThrottlingException"):
        poll(clients, event)
    assert names(clients)["endpoints"] == set()  # dev-new, before the failed read, was still deleted


def test_a_dry_run_stack_delete_reports_on_event_and_waits_for_nothing(clients):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    before = names(clients)
    event = start(clients, dry_run=True)
    assert event["Waiting"] == {"deadline": None}
    assert poll(clients, event) == {"IsComplete": True}
    assert names(clients) == before


def test_an_endpoint_vanishing_between_list_and_delete_is_gone_not_failed(clients):
    """Deleted by someone else after this pass listed it, the endpoint answers DeleteEndpoint and the describe
    after it with ValidationException "Could not find endpoint" (SageMaker's answer, quoted from a real
    DeleteEndpoint in aws/amazon-sagemaker-examples issue 2402; moto reproduces it)."""
    serve(clients.sagemaker, "dev-new", tags("dev"))
    serve(clients.sagemaker, "dev-vanishing", tags("dev"))
    vanish_before(clients, "DeleteEndpoint", "dev-vanishing")
    event = start(clients)

    assert poll(clients, event) == {"IsComplete": False}  # dev-new is deleting; dev-vanishing is simply gone
    assert poll(clients, event, minutes=2) == {"IsComplete": True}
    assert only_the_stacks_parts_left(clients, "dev-new", "dev-vanishing")


def test_an_endpoint_autoscaling_moves_to_updating_between_list_and_delete_is_waited_for_not_failed(clients):
    """Listed InService; by DeleteEndpoint, auto scaling has it Updating and SageMaker refuses the delete. The
    refusal's code and text are not relied on: the endpoint is described again and its status decides."""
    serve(clients.sagemaker, "dev-scaled", tags("dev"))
    scaling = ["dev-scaled"]

    def autoscaling(params: dict) -> None:
        if params["EndpointName"] in scaling:
            set_endpoint_status(scaling.pop(), "Updating")
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "refused"}}, "DeleteEndpoint")

    before(clients.sagemaker, "DeleteEndpoint", autoscaling)
    event = start(clients)

    assert poll(clients, event) == {"IsComplete": False}  # waiting for the update, not failed
    assert names(clients)["endpoints"] == {"dev-scaled"}
    set_endpoint_status("dev-scaled", "InService")
    assert poll(clients, event, minutes=5) == {"IsComplete": False}  # deleted now
    assert poll(clients, event, minutes=6) == {"IsComplete": True}
    assert only_the_stacks_parts_left(clients, "dev-scaled")
