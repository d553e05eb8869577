"""Clean-up runs (scheduled and manual) against moto (SageMaker, tagging, CloudWatch, SNS), and a Stubber for
the pipeline calls moto lacks. The stack-delete protocol is in test_cleanup_on_delete.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from tests.lambda_cleanup import (
    IDLE_TTL,
    PIPELINE_ARN,
    PipelineOnly,
    actions,
    cleanup,
    emitted_metrics,
    environ,
    fail_when,
    later,
    names,
    running_executions,
    serve,
    serve_parts,
    settings,
    stack_tags,
    tags,
    vanish_before,
)
from tests.lambda_handlers import REGION


def test_tag_boundary_only_what_run_time_code_created_for_this_environment_is_touched(clients):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    serve(clients.sagemaker, "untagged-idle", tags(None, created_by=None))
    serve(clients.sagemaker, "staging-idle", tags("staging"))
    serve(clients.sagemaker, "other-project", [{"Key": "ragops:environment", "Value": "dev"}])
    serve(clients.sagemaker, "dev-stack", stack_tags("dev"))  # what the stacks' own resources carry
    serve(clients.sagemaker, "dev-someone-else", tags("dev", created_by="a-notebook"))

    report = cleanup.clean_up({"mode": "scheduled"}, settings(), clients, later(IDLE_TTL + 1))

    left = names(clients)
    assert left["endpoints"] == {"untagged-idle", "staging-idle", "other-project", "dev-stack", "dev-someone-else"}
    assert left["configs"] == left["models"] == left["endpoints"] | {"dev-idle"}  # a stack's: never the hook's
    assert actions(report) == {("endpoint", "dev-idle"): "delete"}  # nothing else is even looked at


def test_endpoint_with_recent_invocations_is_kept(clients):
    serve(clients.sagemaker, "dev-busy", tags("dev"))
    now = later(IDLE_TTL + 1)
    clients.cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": "dev-busy"},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
                "Timestamp": now - timedelta(hours=1),
                "Value": 3,
            }
        ],
    )
    report = cleanup.clean_up({}, settings(), clients, now)

    assert "dev-busy" in names(clients)["endpoints"]
    (endpoint,) = [a for a in report["actions"] if a["kind"] == "endpoint"]
    assert endpoint["action"] == "skip"
    assert endpoint["reason"].startswith("3 invocations")


def test_young_endpoints_wait_for_the_ttl(clients):
    serve(clients.sagemaker, "dev-new", tags("dev"))

    report = cleanup.clean_up({}, settings(), clients, later(1))

    assert names(clients)["endpoints"] == {"dev-new"}
    assert actions(report) == {("endpoint", "dev-new"): "skip"}


@pytest.mark.parametrize("mode", ["scheduled", "delete"])
def test_configs_and_models_are_never_deleted_even_with_a_creators_tag(clients, mode):
    """Run-time code creates endpoints only; a config or model with the creator's mark was tagged by hand, and
    the hook neither lists nor deletes it (its role may not: tests/stacks/test_cleanup_ownership.py)."""
    serve_parts(clients.sagemaker, "dev-unused", tags("dev"))

    report = cleanup.clean_up({"mode": mode}, settings(), clients, later(IDLE_TTL + 1))

    assert names(clients) == {"endpoints": set(), "configs": {"dev-unused"}, "models": {"dev-unused"}}
    assert report["actions"] == []


@pytest.mark.parametrize("source", ["config", "event"])
def test_dry_run_reports_without_acting(clients, source):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    before = names(clients)
    event = {"mode": "scheduled", "dry_run": True} if source == "event" else {}

    report = cleanup.clean_up(event, settings(dry_run=source == "config"), clients, later(IDLE_TTL + 1))

    assert names(clients) == before
    assert report["dry_run"] is True
    assert actions(report) == {("endpoint", "dev-idle"): "would-delete"}


def test_event_can_turn_dry_run_off_for_one_run(clients):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    cleanup.clean_up({"dry_run": False}, settings(dry_run=True), clients, later(IDLE_TTL + 1))
    assert names(clients)["endpoints"] == set()


def test_actions_are_notified_and_skips_alone_are_not(clients):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="n")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients.sns.subscribe(TopicArn=settings().topic_arn, Protocol="sqs", Endpoint=queue_arn)
    serve(clients.sagemaker, "dev-idle", tags("dev"))

    cleanup.clean_up({}, settings(), clients, later(1))  # everything young: only skips
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    cleanup.clean_up({}, settings(), clients, later(IDLE_TTL + 1))
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(json.loads(message["Body"])["Message"])["counts"] == {"delete": 1}


def test_a_failed_describe_is_recorded_and_the_run_goes_on(clients):
    serve(clients.sagemaker, "dev-a", tags("dev"))
    serve(clients.sagemaker, "dev-b", tags("dev"))
    fail_when(clients.sagemaker, "DescribeEndpoint", lambda p: p["EndpointName"] == "dev-a")

    report = cleanup.clean_up({"mode": "scheduled"}, settings(), clients, later(IDLE_TTL + 1))

    (failure,) = [a for a in report["actions"] if a["action"] == "failed"]
    assert failure == {
        "kind": "endpoint", "name": "dev-a", "action": "failed", "reason": "describe_endpoint: ThrottlingException"
    }  # fmt: skip
    assert names(clients)["endpoints"] == {"dev-a"}  # dev-b, read after the failure, was still deleted
    assert actions(report) == {("endpoint", "dev-a"): "failed", ("endpoint", "dev-b"): "delete"}


def subscribe(clients):
    """An SQS queue on the topic: what the clean-up notified."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="notified")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients.sns.subscribe(TopicArn=settings().topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return lambda: [
        json.loads(json.loads(m["Body"])["Message"]) for m in sqs.receive_message(QueueUrl=queue).get("Messages", [])
    ]


def test_an_endpoint_vanishing_between_list_and_describe_is_gone_not_a_failure(clients, capsys):
    """Deleted by someone else after this run listed it, an endpoint answers DescribeEndpoint with
    ValidationException "Could not find endpoint" (SageMaker's answer, which moto reproduces). It is no failure:
    this run's deletes and report go on."""
    notified = subscribe(clients)
    cleanup.metrics.clear_metrics()
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    serve(clients.sagemaker, "dev-vanishing", tags("dev"))
    vanish_before(clients, "DescribeEndpoint", "dev-vanishing")

    report = cleanup.clean_up({"mode": "scheduled"}, settings(), clients, later(IDLE_TTL + 1))

    assert actions(report) == {("endpoint", "dev-idle"): "delete", ("endpoint", "dev-vanishing"): "skip"}
    (vanished,) = [a for a in report["actions"] if a["name"] == "dev-vanishing"]
    assert vanished["reason"] == "gone: deleted since it was listed"
    assert names(clients)["endpoints"] == set()
    (message,) = notified()
    assert "failed" not in message["counts"]
    assert emitted_metrics(capsys) == {"CleanupDeleted": [1.0], "CleanupStopped": [0.0], "CleanupFailed": [0.0]}


def test_a_failed_delete_in_a_scheduled_run_is_counted_for_the_alarm(clients, capsys):
    cleanup.metrics.clear_metrics()
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    fail_when(clients.sagemaker, "DeleteEndpoint", lambda p: True, code="ValidationException")

    report = cleanup.clean_up({"mode": "scheduled"}, settings(), clients, later(IDLE_TTL + 1))

    assert actions(report)[("endpoint", "dev-idle")] == "failed"
    assert emitted_metrics(capsys)["CleanupFailed"] == [1.0]


def test_a_failed_metric_read_keeps_that_endpoint_only(clients):
    serve(clients.sagemaker, "dev-a", tags("dev"))
    serve(clients.sagemaker, "dev-b", tags("dev"))
    fail_when(clients.cloudwatch, "GetMetricStatistics", lambda p: p["Dimensions"][0]["Value"] == "dev-a")

    report = cleanup.clean_up({}, settings(), clients, later(IDLE_TTL + 1))

    assert actions(report)[("endpoint", "dev-a")] == "failed"
    assert actions(report)[("endpoint", "dev-b")] == "delete"
    assert names(clients)["endpoints"] == {"dev-a"}


NOW = datetime(2026, 1, 2, tzinfo=UTC)


def test_pipeline_executions_running_past_their_ttl_are_stopped():
    stubbed = PipelineOnly()
    stubbed.expect_pass(running_executions(NOW), stops=["stale"])

    report = cleanup.clean_up({"mode": "scheduled"}, settings(), stubbed.clients, NOW)

    stubbed.assert_all_called()
    assert report["counts"] == {"stop": 1, "skip": 1}
    assert len(stubbed.clients.sns.messages) == 1


def test_dry_run_does_not_stop_executions():
    stubbed = PipelineOnly()
    stubbed.expect_pass(running_executions(NOW), stops=[])
    report = cleanup.clean_up({"dry_run": True}, settings(), stubbed.clients, NOW)
    stubbed.assert_all_called()
    assert actions(report)[("pipeline-execution", f"{PIPELINE_ARN}/execution/stale")] == "would-stop"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "event must be a JSON object"),
        ({"mode": "everything"}, "mode: Input should be 'scheduled' or 'delete'"),
        ({"dry_run": "maybe"}, "dry_run: Input should be a valid boolean"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({"RequestType": "Destroy"}, "RequestType: Input should be"),
        ({"RequestType": "Delete"}, "a Delete request names its stack"),
    ],
)
def test_bad_events_are_refused_before_anything_is_done(clients, event, message):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    with pytest.raises(cleanup.CleanupError, match=message):
        cleanup.clean_up(event, settings(), clients, later(IDLE_TTL + 1))
    assert names(clients)["endpoints"] == {"dev-idle"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RAGOPS_ENVIRONMENT", ""),
        ("RAGOPS_ENDPOINT_IDLE_TTL_HOURS", "0"),
        ("RAGOPS_DRY_RUN", "perhaps"),
        ("RAGOPS_DELETE_WAIT_MINUTES", "60"),  # CloudFormation stops waiting for a custom resource after an hour
    ],
)
def test_bad_configuration_names_the_variable(variable, value):
    with pytest.raises(cleanup.CleanupError, match=variable):
        cleanup.Settings.from_environ(environ(**{variable: value}))
