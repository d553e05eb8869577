"""Clean-up against moto (SageMaker, tagging, CloudWatch, SNS) and a Stubber for StopPipelineExecution."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.lambda_handlers import ACCOUNT, REGION, load_handler

cleanup = load_handler("cleanup")

IDLE_TTL = 8
EXECUTION_TTL = 6
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/dev-Operations/6b1c2d30-0000-4000-8000-000000000000"
DELETE = {
    "RequestType": "Delete",
    "StackId": STACK_ID,
    "PhysicalResourceId": "ragops-dev-cleanup-on-delete",
    "ResourceProperties": {},
}
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/serving:1"


def settings(dry_run: bool = False):
    return cleanup.Settings.from_environ(
        {
            "RAGOPS_ENVIRONMENT": "dev",
            "RAGOPS_ENDPOINT_IDLE_TTL_HOURS": str(IDLE_TTL),
            "RAGOPS_PIPELINE_EXECUTION_TTL_HOURS": str(EXECUTION_TTL),
            "RAGOPS_DRY_RUN": str(dry_run).lower(),
            "RAGOPS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:ragops-dev-operations",
        }
    )


def tags(environment: str | None, **extra: str) -> list[dict[str, str]]:
    base = {"ragops:project": "ragops", "ragops:environment": environment} if environment else {}
    return [{"Key": k, "Value": v} for k, v in {**base, **extra}.items()]


def serve(sagemaker, name: str, resource_tags: list[dict[str, str]], *, endpoint: bool = True) -> None:
    """A model, its endpoint config and (optionally) an endpoint, all carrying `resource_tags`."""
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE}, Tags=resource_tags)
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
        Tags=resource_tags,
    )
    if endpoint:
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=resource_tags)


def stack_in(status: str):
    """A CloudFormation client that reports the hook's own stack in `status` (asked once per Delete)."""
    client = boto3.client("cloudformation", region_name=REGION)
    stub = Stubber(client)
    stack = {"StackName": "dev-Operations", "StackId": STACK_ID, "CreationTime": datetime(2026, 1, 1, tzinfo=UTC)}
    stub.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": status}]}, {"StackName": STACK_ID})
    stub.activate()
    return client


@pytest.fixture
def clients(aws):
    sns = boto3.client("sns", region_name=REGION)
    sns.create_topic(Name="ragops-dev-operations")
    return cleanup.Clients(
        sagemaker=boto3.client("sagemaker", region_name=REGION),
        tagging=boto3.client("resourcegroupstaggingapi", region_name=REGION),
        cloudwatch=boto3.client("cloudwatch", region_name=REGION),
        sns=sns,
        cloudformation=stack_in("DELETE_IN_PROGRESS"),
    )


def later(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def names(clients) -> dict[str, set[str]]:
    sagemaker = clients.sagemaker
    return {
        "endpoints": {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]},
        "configs": {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]},
        "models": {m["ModelName"] for m in sagemaker.list_models()["Models"]},
    }


def actions(report: dict) -> dict[tuple[str, str], str]:
    return {(a["kind"], a["name"]): a["action"] for a in report["actions"]}


def test_tag_boundary_untagged_other_environment_and_stack_owned_resources_are_never_touched(clients):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    serve(clients.sagemaker, "untagged-idle", tags(None))
    serve(clients.sagemaker, "staging-idle", tags("staging"))
    serve(clients.sagemaker, "other-project", [{"Key": "ragops:environment", "Value": "dev"}])
    serve(clients.sagemaker, "dev-stack", tags("dev", **{"aws:cloudformation:stack-name": "dev-Models"}))

    report = cleanup.clean_up({"mode": "scheduled"}, settings(), clients, later(IDLE_TTL + 1))

    left = names(clients)
    assert left["endpoints"] == {"untagged-idle", "staging-idle", "other-project", "dev-stack"}
    assert left["configs"] == left["models"] == left["endpoints"]
    assert actions(report) == {
        ("endpoint", "dev-idle"): "delete",
        ("endpoint", "dev-stack"): "skip",
        ("endpoint-config", "dev-idle"): "delete",
        ("endpoint-config", "dev-stack"): "skip",
        ("model", "dev-idle"): "delete",
        ("model", "dev-stack"): "skip",
    }


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
    assert actions(report)[("endpoint-config", "dev-busy")] == "skip"
    assert actions(report)[("model", "dev-busy")] == "skip"


def test_young_endpoints_and_orphans_wait_for_the_ttl(clients):
    serve(clients.sagemaker, "dev-new", tags("dev"))
    serve(clients.sagemaker, "dev-orphan", tags("dev"), endpoint=False)

    report = cleanup.clean_up({}, settings(), clients, later(1))

    assert names(clients)["models"] == {"dev-new", "dev-orphan"}
    assert set(actions(report).values()) == {"skip"}


def test_orphaned_config_and_model_past_the_ttl_are_deleted(clients):
    serve(clients.sagemaker, "dev-orphan", tags("dev"), endpoint=False)
    report = cleanup.clean_up({}, settings(), clients, later(IDLE_TTL + 1))

    assert names(clients) == {"endpoints": set(), "configs": set(), "models": set()}
    assert actions(report) == {("endpoint-config", "dev-orphan"): "delete", ("model", "dev-orphan"): "delete"}


@pytest.mark.parametrize("source", ["config", "event"])
def test_dry_run_reports_without_acting(clients, source):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    before = names(clients)
    event = {"mode": "scheduled", "dry_run": True} if source == "event" else {}

    report = cleanup.clean_up(event, settings(dry_run=source == "config"), clients, later(IDLE_TTL + 1))

    assert names(clients) == before
    assert report["dry_run"] is True
    assert set(actions(report).values()) == {"would-delete"}
    assert len(report["actions"]) == 3


def test_event_can_turn_dry_run_off_for_one_run(clients):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    cleanup.clean_up({"dry_run": False}, settings(dry_run=True), clients, later(IDLE_TTL + 1))
    assert names(clients)["endpoints"] == set()


def test_stack_delete_removes_young_runtime_resources_but_not_stack_owned_ones(clients):
    serve(clients.sagemaker, "dev-new", tags("dev"))
    serve(clients.sagemaker, "staging-new", tags("staging"))
    serve(clients.sagemaker, "dev-stack", tags("dev", **{"aws:cloudformation:stack-name": "dev-Models"}))

    response = cleanup.clean_up(DELETE, settings(), clients, datetime.now(UTC))

    assert response["PhysicalResourceId"] == "ragops-dev-cleanup-on-delete"
    assert response["Data"] == {"delete": 3, "skip": 3}
    assert names(clients)["endpoints"] == {"staging-new", "dev-stack"}


@pytest.mark.parametrize(
    "status",
    ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"],
)
def test_a_delete_outside_the_stacks_own_deletion_deletes_and_stops_nothing(status):
    """A replaced or renamed custom resource, or a rolled-back create: the environment keeps running."""
    untouched = {name: boto3.client(name, region_name=REGION) for name in ("sagemaker", "resourcegroupstaggingapi")}
    stubs = [Stubber(client) for client in untouched.values()]  # nothing queued: any call fails the test
    for stub in stubs:
        stub.activate()
    clients = cleanup.Clients(
        sagemaker=untouched["sagemaker"],
        tagging=untouched["resourcegroupstaggingapi"],
        cloudwatch=None,
        sns=_NullSns(),
        cloudformation=stack_in(status),
    )

    response = cleanup.clean_up(DELETE, settings(), clients, datetime(2026, 1, 2, tzinfo=UTC))

    assert response == {"PhysicalResourceId": "ragops-dev-cleanup-on-delete"}
    assert clients.sns.messages == []


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_stack_create_and_update_do_nothing(clients, request_type):
    serve(clients.sagemaker, "dev-idle", tags("dev"))
    before = names(clients)
    response = cleanup.clean_up({"RequestType": request_type}, settings(), clients, later(IDLE_TTL + 1))
    assert response == {"PhysicalResourceId": "ragops-dev-cleanup-on-delete"}
    assert names(clients) == before


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
    assert json.loads(json.loads(message["Body"])["Message"])["counts"] == {"delete": 3}


def fail_when(client, operation: str, failing: Callable[[dict], bool]) -> None:
    """Make `operation` raise as a throttled AWS call would whenever `failing(its parameters)` holds."""

    def throttle(params, **_):
        if failing(params):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parameter-build.{service}.{operation}", throttle)


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
    # Which config dev-a uses is unknown, so no config goes this run; every model is still in use.
    assert {k: v for k, v in actions(report).items() if k[0] != "endpoint"} == {
        ("endpoint-config", "dev-a"): "skip",
        ("endpoint-config", "dev-b"): "skip",
        ("model", "dev-a"): "skip",
        ("model", "dev-b"): "skip",
    }


def test_a_failed_metric_read_keeps_that_endpoint_only(clients):
    serve(clients.sagemaker, "dev-a", tags("dev"))
    serve(clients.sagemaker, "dev-b", tags("dev"))
    fail_when(clients.cloudwatch, "GetMetricStatistics", lambda p: p["Dimensions"][0]["Value"] == "dev-a")

    report = cleanup.clean_up({}, settings(), clients, later(IDLE_TTL + 1))

    assert actions(report)[("endpoint", "dev-a")] == "failed"
    assert actions(report)[("endpoint", "dev-b")] == "delete"
    assert names(clients)["endpoints"] == {"dev-a"}


def test_a_failed_read_on_stack_delete_fails_the_custom_resource_after_the_rest_is_done(clients):
    serve(clients.sagemaker, "dev-new", tags("dev"))
    serve(clients.sagemaker, "staging-new", tags("staging"))
    fail_when(clients.sagemaker, "DescribeEndpoint", lambda p: p["EndpointName"] == "staging-new")

    with pytest.raises(RuntimeError, match=r"clean-up failed for 1 resource.*describe_endpoint: ThrottlingException"):
        cleanup.clean_up(DELETE, settings(), clients, later(1))
    assert names(clients)["endpoints"] == {"staging-new"}


PIPELINE = "ragops-dev-rag"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}"


def execution(suffix: str, status: str, started: datetime) -> dict:
    return {
        "PipelineExecutionArn": f"{PIPELINE_ARN}/execution/{suffix}",
        "PipelineExecutionStatus": status,
        "StartTime": started,
    }


def stubbed_pipeline_clients(now: datetime, expected_stops: list[str]):
    """Tagging returns this environment's pipeline plus one of staging (which must be ignored anyway)."""
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    tag_stub, sm_stub = Stubber(tagging), Stubber(sagemaker)
    staging_arn = PIPELINE_ARN.replace("ragops-dev-", "ragops-staging-")
    tag_stub.add_response(
        "get_resources",
        {
            "ResourceTagMappingList": [
                {"ResourceARN": PIPELINE_ARN, "Tags": tags("dev")},
                {"ResourceARN": staging_arn, "Tags": tags("staging")},
            ]
        },
    )
    sm_stub.add_response(
        "list_pipelines",
        {
            "PipelineSummaries": [
                {"PipelineArn": PIPELINE_ARN, "PipelineName": PIPELINE},
                {"PipelineArn": staging_arn, "PipelineName": "ragops-staging-rag"},
                {"PipelineArn": f"{PIPELINE_ARN}-untagged", "PipelineName": f"{PIPELINE}-untagged"},
            ]
        },
    )
    sm_stub.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                execution("stale", "Executing", now - timedelta(hours=EXECUTION_TTL + 1)),
                execution("fresh", "Executing", now - timedelta(hours=1)),
                execution("done", "Succeeded", now - timedelta(hours=48)),
            ]
        },
        {"PipelineName": PIPELINE},
    )
    for suffix in expected_stops:
        arn = f"{PIPELINE_ARN}/execution/{suffix}"
        sm_stub.add_response(
            "stop_pipeline_execution",
            {"PipelineExecutionArn": arn},
            {"PipelineExecutionArn": arn, "ClientRequestToken": hashlib.sha256(arn.encode()).hexdigest()},
        )
    tag_stub.activate()
    sm_stub.activate()
    clients = cleanup.Clients(
        sagemaker=sagemaker,
        tagging=tagging,
        cloudwatch=None,
        sns=_NullSns(),
        cloudformation=stack_in("DELETE_IN_PROGRESS"),
    )
    return clients, (tag_stub, sm_stub)


class _NullSns:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def publish(self, **kwargs) -> None:
        self.messages.append(kwargs)


@pytest.mark.parametrize(
    ("event", "stops"),
    [({"mode": "scheduled"}, ["stale"]), (DELETE, ["stale", "fresh"])],
)
def test_pipeline_executions_past_their_ttl_or_on_stack_delete_are_stopped(event, stops):
    now = datetime(2026, 1, 2, tzinfo=UTC)
    clients, stubs = stubbed_pipeline_clients(now, stops)

    result = cleanup.clean_up(event, settings(), clients, now)

    for stub in stubs:
        stub.assert_no_pending_responses()
    assert result if "RequestType" in event else result["counts"].get("stop") == len(stops)
    assert len(clients.sns.messages) == 1


def test_dry_run_does_not_stop_executions():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    clients, stubs = stubbed_pipeline_clients(now, [])
    report = cleanup.clean_up({"dry_run": True}, settings(), clients, now)
    for stub in stubs:
        stub.assert_no_pending_responses()
    assert actions(report)[("pipeline-execution", f"{PIPELINE_ARN}/execution/stale")] == "would-stop"


def test_failed_stop_on_stack_delete_fails_the_custom_resource():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    clients, (_, sm_stub) = stubbed_pipeline_clients(now, [])
    for _ in range(2):
        sm_stub.add_client_error("stop_pipeline_execution", "ResourceNotFound", expected_params=None)
    with pytest.raises(RuntimeError, match="clean-up failed for 2 resource"):
        cleanup.clean_up(DELETE, settings(), clients, now)


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
    [("RAGOPS_ENVIRONMENT", ""), ("RAGOPS_ENDPOINT_IDLE_TTL_HOURS", "0"), ("RAGOPS_DRY_RUN", "perhaps")],
)
def test_bad_configuration_names_the_variable(variable, value):
    environ = {
        "RAGOPS_ENVIRONMENT": "dev",
        "RAGOPS_ENDPOINT_IDLE_TTL_HOURS": "8",
        "RAGOPS_PIPELINE_EXECUTION_TTL_HOURS": "6",
        "RAGOPS_DRY_RUN": "false",
        "RAGOPS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:t",
        variable: value,
    }
    with pytest.raises(cleanup.CleanupError, match=variable):
        cleanup.Settings.from_environ(environ)
