"""What the clean-up tests share: the handler, its settings, SageMaker resources in moto, stubbed clients."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker.models import sagemaker_backends

from processing.backends.on_demand import CREATED_BY_TAG, ON_DEMAND_CREATOR
from tests.lambda_handlers import ACCOUNT, REGION, load_handler

cleanup = load_handler("cleanup")

IDLE_TTL = 8
EXECUTION_TTL = 6
DELETE_WAIT_MINUTES = 40
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/serving:1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/dev-Operations/6b1c2d30-0000-4000-8000-000000000000"
PHYSICAL_ID = "ragops-dev-cleanup-on-delete"
DELETE = {"RequestType": "Delete", "StackId": STACK_ID, "PhysicalResourceId": PHYSICAL_ID, "ResourceProperties": {}}
PIPELINE = "ragops-dev-rag"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}"


def environ(**overrides: str) -> dict[str, str]:
    return {
        "RAGOPS_ENVIRONMENT": "dev",
        "RAGOPS_ENDPOINT_IDLE_TTL_HOURS": str(IDLE_TTL),
        "RAGOPS_PIPELINE_EXECUTION_TTL_HOURS": str(EXECUTION_TTL),
        "RAGOPS_DRY_RUN": "false",
        "RAGOPS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:ragops-dev-operations",
        "RAGOPS_DELETE_WAIT_MINUTES": str(DELETE_WAIT_MINUTES),
        **overrides,
    }


def settings(dry_run: bool = False):
    return cleanup.Settings.from_environ(environ(RAGOPS_DRY_RUN=str(dry_run).lower()))


def tags(environment: str | None, *, created_by: str | None = ON_DEMAND_CREATOR, **extra: str) -> list[dict[str, str]]:
    """A resource's tags: the project's and `environment`'s, and (unless None) the run-time creator's mark."""
    base = {"ragops:project": "ragops", "ragops:environment": environment} if environment else {}
    if created_by:
        base[CREATED_BY_TAG] = created_by
    return [{"Key": k, "Value": v} for k, v in {**base, **extra}.items()]


def stack_tags(environment: str) -> list[dict[str, str]]:
    """What the stacks put on their own SageMaker resources (tests/stacks/test_cleanup_ownership.py reads them)."""
    return tags(environment, created_by=None)


def use_moto_endpoint_config_arns(monkeypatch) -> None:
    """moto 5.2.5 stores an endpoint config's ARN as a 1-tuple (`self.arn = (arn,)`), so the tagging API
    reports "('arn:...',)" for it. Real AWS returns the ARN; give moto's object the plain string, so the tagging
    answer the hook reads is AWS-shaped for every type, the ones it must ignore included."""
    original = sagemaker_models.FakeEndpointConfig.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.arn = self.endpoint_config_arn

    monkeypatch.setattr(sagemaker_models.FakeEndpointConfig, "__init__", init)


def serve(sagemaker, name: str, resource_tags: list[dict[str, str]]) -> None:
    """An endpoint carrying `resource_tags`, on its own model and endpoint config. Run-time code creates only the
    endpoint, on a stack's config, so the parts carry the same tags without the creator's mark."""
    serve_parts(sagemaker, name, [tag for tag in resource_tags if tag["Key"] != CREATED_BY_TAG])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=resource_tags)


def serve_parts(sagemaker, name: str, parts_tags: list[dict[str, str]]) -> None:
    """A model and its endpoint config, with no endpoint."""
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE}, Tags=parts_tags)
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
        Tags=parts_tags,
    )


def set_endpoint_status(name: str, status: str) -> None:
    """What SageMaker does on its own time (moto endpoints are InService at once and vanish on delete)."""
    sagemaker_backends[ACCOUNT][REGION].endpoints[name].endpoint_status = status


def finish_deleting(name: str) -> None:
    sagemaker_backends[ACCOUNT][REGION].delete_endpoint(name)


def stack_in(status: str):
    """A CloudFormation client that reports the hook's own stack in `status` (asked once per Delete)."""
    client = boto3.client("cloudformation", region_name=REGION)
    stub = Stubber(client)
    stack = {"StackName": "dev-Operations", "StackId": STACK_ID, "CreationTime": datetime(2026, 1, 1, tzinfo=UTC)}
    stub.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": status}]}, {"StackName": STACK_ID})
    stub.activate()
    return client


def moto_clients():
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


def fail_when(
    client, operation: str, failing: Callable[[dict], bool], code: str = "ThrottlingException", message: str = ""
) -> None:
    """Make `operation` raise as AWS would (throttled, by default) whenever `failing(its parameters)` holds."""

    def throttle(params, **_):
        if failing(params):
            raise ClientError({"Error": {"Code": code, "Message": message or "Rate exceeded"}}, operation)

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parameter-build.{service}.{operation}", throttle)


def before(client, operation: str, action) -> None:
    """Run `action(parameters)` just before each `operation` call: what happens elsewhere between two calls."""
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parameter-build.{service}.{operation}", lambda params, **_: action(params))


def vanish_before(clients, operation: str, name: str) -> None:
    """Someone else deletes endpoint `name` after a pass listed it, just before the pass's first `operation` on it
    (DescribeEndpoint, DeleteEndpoint)."""
    vanishing = [name]
    before(
        clients.sagemaker,
        operation,
        lambda p: p["EndpointName"] in vanishing and finish_deleting(vanishing.pop()),
    )


def emitted_metrics(capsys) -> dict[str, list[float]]:
    """The clean-up metrics Powertools flushed as CloudWatch embedded metric format, by name."""
    cleanup.metrics.flush_metrics()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (blob,) = lines
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "RagOps"
    assert (blob["service"], blob["environment"]) == ("ragops-cleanup", "dev")
    return {m["Name"]: blob[m["Name"]] for m in directive["Metrics"]}


class NullSns:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def publish(self, **kwargs) -> None:
        self.messages.append(kwargs)


def execution(suffix: str, status: str, started: datetime) -> dict:
    return {
        "PipelineExecutionArn": f"{PIPELINE_ARN}/execution/{suffix}",
        "PipelineExecutionStatus": status,
        "StartTime": started,
    }


def running_executions(now: datetime) -> list[dict]:
    """One execution running past the TTL, one within it, one finished."""
    return [
        execution("stale", "Executing", now - timedelta(hours=EXECUTION_TTL + 1)),
        execution("fresh", "Executing", now - timedelta(hours=1)),
        execution("done", "Succeeded", now - timedelta(hours=48)),
    ]


def stop_token(arn: str) -> str:
    return hashlib.sha256(arn.encode()).hexdigest()


class PipelineOnly:
    """Stubbed clients for an environment whose only tagged resources are pipelines: one of dev, one of staging
    (which must be ignored), and an untagged one. `expect_pass` queues the calls one pass makes."""

    def __init__(self, status: str = "DELETE_IN_PROGRESS") -> None:
        tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.tagging, self.sagemaker = Stubber(tagging), Stubber(sagemaker)
        for stub in (self.tagging, self.sagemaker):
            stub.activate()
        self.clients = cleanup.Clients(
            sagemaker=sagemaker, tagging=tagging, cloudwatch=None, sns=NullSns(), cloudformation=stack_in(status)
        )

    def expect_pass(self, executions: list[dict], stops: list[str]) -> None:
        staging_arn = PIPELINE_ARN.replace("ragops-dev-", "ragops-staging-")
        mappings = [
            {"ResourceARN": PIPELINE_ARN, "Tags": tags("dev")},
            {"ResourceARN": staging_arn, "Tags": tags("staging")},
        ]
        self.tagging.add_response("get_resources", {"ResourceTagMappingList": mappings})
        pipelines = [
            {"PipelineArn": PIPELINE_ARN, "PipelineName": PIPELINE},
            {"PipelineArn": staging_arn, "PipelineName": "ragops-staging-rag"},
            {"PipelineArn": f"{PIPELINE_ARN}-untagged", "PipelineName": f"{PIPELINE}-untagged"},
        ]
        self.sagemaker.add_response("list_pipelines", {"PipelineSummaries": pipelines})
        self.sagemaker.add_response(
            "list_pipeline_executions", {"PipelineExecutionSummaries": executions}, {"PipelineName": PIPELINE}
        )
        for suffix in stops:
            arn = f"{PIPELINE_ARN}/execution/{suffix}"
            expected = {"PipelineExecutionArn": arn, "ClientRequestToken": stop_token(arn)}
            self.sagemaker.add_response("stop_pipeline_execution", {"PipelineExecutionArn": arn}, expected)

    def assert_all_called(self) -> None:
        for stub in (self.tagging, self.sagemaker):
            stub.assert_no_pending_responses()
