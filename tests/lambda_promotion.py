"""What the promotion tests share: the handler, its settings, executions in moto, reports, readers of the results."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import boto3
from botocore.exceptions import ClientError

from tests.lambda_handlers import ACCOUNT, REGION, load_handler

promotion = load_handler("promotion")

BUCKET = "ragops-dev-data"
PIPELINE = "ragops-dev-single"
PIPELINES = f"{PIPELINE},ragops-dev-multi"  # as the stack sets RAGOPS_PIPELINES
EXECUTION_ID = "p4jn9xou8a8s"
EXECUTION_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/{EXECUTION_ID}"
DEV_EU_EXECUTION_ARN = EXECUTION_ARN.replace("ragops-dev-", "ragops-dev-eu-")
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/ragops-processing@sha256:{'a' * 64}"
GIT_SHA = "0123456789abcdef0123456789abcdef01234567"
THRESHOLDS = {"hit_at_k": 0.85, "mrr": 0.7, "answer_embedding_cosine": 0.5}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def report(**metrics: object) -> dict:
    values = {"hit_at_k": 0.9, "mrr": 0.75, "ndcg_at_k": 0.8, "token_f1": 0.4, "answer_embedding_cosine": 0.6}
    return {
        "schema_version": 1,
        "mlflow_experiment": "ragops-dev",
        "mlflow_parent_run_id": "abc123",
        "run_config": {"chunking_strategy": "recursive", "chunk_size": 512, "top_k": 5},
        "metrics": {**values, **metrics},
        "skipped_metrics": {},
        "question_count": 50,
    }


def step_event(arn: str = EXECUTION_ARN, **overrides: str) -> dict:
    return {
        "environment": "dev",
        "execution_arn": arn,
        "report_s3_uri": report_uri(arn),
        "image_uri": IMAGE,
        "git_sha": GIT_SHA,
        **overrides,
    }


def status_change(execution_arn: str, status: str = "Succeeded") -> dict:
    """The documented EventBridge example, with this environment's ARNs."""
    pipeline_arn = execution_arn.split("/execution/")[0]
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73kd93ir",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2021-03-15T16:10:11Z",
        "region": REGION,
        "resources": [pipeline_arn, execution_arn],
        "detail": {
            "pipelineExecutionDisplayName": "SomeDisplayName",
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
            "executionStartTime": "2021-03-15T16:03:13Z",
            "executionEndTime": "2021-03-15T16:10:10Z",
            "pipelineExecutionDescription": "SomeDescription",
            "pipelineArn": pipeline_arn,
            "pipelineExecutionArn": execution_arn,
        },
    }


def settings(environment: str = "dev", next_environment: str | None = "staging"):
    return promotion.Settings.from_environ(
        {
            "RAGOPS_ENVIRONMENT": environment,
            "RAGOPS_NEXT_ENVIRONMENT": next_environment or "",
            "RAGOPS_THRESHOLDS": json.dumps(THRESHOLDS),
            "RAGOPS_DATA_BUCKET": BUCKET,
            "RAGOPS_SSM_PREFIX": "/ragops",
            "RAGOPS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:ragops-dev-operations",
            "RAGOPS_EVENT_BUS": "default",
            "RAGOPS_PIPELINES": f"ragops-{environment}-single,ragops-{environment}-multi",
        }
    )


@dataclass
class World:
    clients: object
    notifications: Callable[[], list]
    arn: str  # an execution of ragops-dev-single that SageMaker (moto) knows, with its report in place
    sent: list = field(default_factory=list)  # ids of the events EventBridge accepted

    def events(self) -> list:
        """The events accepted since the last call."""
        taken, self.sent[:] = list(self.sent), []
        return taken

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    @property
    def report_uri(self) -> str:
        return report_uri(self.arn)


def report_uri(arn: str) -> str:
    return f"s3://{BUCKET}/runs/{arn.rsplit('/', 1)[1]}/report/report.json"


PROVENANCE = [{"Name": "ImageUri", "Value": IMAGE}, {"Name": "GitSha", "Value": GIT_SHA}]


def start_execution(sagemaker, pipeline: str = PIPELINE, parameters: list | None = None) -> str:
    """A real (moto) execution: the hook reads its start time, which orders promotions, and its parameters."""
    try:
        sagemaker.create_pipeline(
            PipelineName=pipeline,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}),
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
        )
    except sagemaker.exceptions.ResourceNotFound:
        pass
    except ClientError as error:
        if "already exists" not in str(error):
            raise
    return sagemaker.start_pipeline_execution(
        PipelineName=pipeline, PipelineParameters=PROVENANCE if parameters is None else parameters
    )["PipelineExecutionArn"]


def make_world() -> World:
    """A versioned data bucket, a topic with an SQS subscriber (to count notifications), an execution, its report."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="ragops-dev-operations")["TopicArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    events = boto3.client("events", region_name=REGION)
    clients = promotion.Clients(
        s3=s3,
        ssm=boto3.client("ssm", region_name=REGION),
        events=events,
        sns=sns,
        sagemaker=boto3.client("sagemaker", region_name=REGION),
    )
    arn = start_execution(clients.sagemaker)
    put_report(report(), arn)
    promotion.metrics.clear_metrics()
    world = World(clients, lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []), arn)
    count_events(events, world)
    return world


def count_events(events, world: World) -> None:
    """Record every PutEvents entry EventBridge (moto) accepted from `events` (moto routes events to targets
    only through a package the project does not need, so the entries are counted where they are sent)."""

    def accepted(parsed, **_):
        world.sent.extend(e["EventId"] for e in parsed.get("Entries", []) if "EventId" in e)

    events.meta.events.register("after-call.events.PutEvents", accepted)


def put_report(body: object, arn: str) -> None:
    """The report where the evaluation stage of execution `arn` writes it, naming that execution and its
    environment as the stage does (unless `body` names something else)."""
    key = report_uri(arn).split(f"s3://{BUCKET}/", 1)[1]
    if isinstance(body, dict) and "identity" not in body:
        environment = arn.split(":pipeline/ragops-", 1)[1].split("-", 1)[0]
        body = {**body, "identity": {"environment": environment, "pipeline_execution_arn": arn}}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=data)


def parameter(clients, name: str) -> dict:
    return json.loads(clients.ssm.get_parameter(Name=name)["Parameter"]["Value"])


def history(clients, name: str) -> list:
    try:
        return clients.ssm.get_parameter_history(Name=name)["Parameters"]
    except clients.ssm.exceptions.ParameterNotFound:
        return []


def records(clients) -> list[str]:
    """The decision records (not their progress objects, not the ordered pointers)."""
    listed = clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="promotions/")
    return [o["Key"] for o in listed.get("Contents", []) if "/decisions/" in o["Key"] and "progress" not in o["Key"]]


def emitted(capsys) -> dict[str, float]:
    """The metrics Powertools flushed as CloudWatch embedded metric format, by name."""
    promotion.metrics.flush_metrics()
    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "RagOps"
    assert [sorted(d) for d in directive["Dimensions"]] == [["environment", "service"]]
    assert (blob["service"], blob["environment"]) == ("ragops-promotion", "dev")
    return {m["Name"]: blob[m["Name"]] for m in directive["Metrics"]}


def record_only(world, arn: str) -> None:
    """An attempt that wrote the decision record and died before any parameter."""
    clients = world.clients
    candidate = promotion.parse_event(step_event(arn), settings(), clients.sagemaker)
    record = promotion.decide(candidate, promotion.read_report(clients.s3, report_uri(arn)), settings(), NOW)
    promotion.write_record_once(clients.s3, BUCKET, promotion.record_key(settings(), candidate), record)


def fresh_clients(world: World) -> object:
    """Clients of their own against the same moto backends: one delivery's calls can be interleaved or failed
    without touching another's."""
    clients = promotion.Clients(
        *(boto3.client(n, region_name=REGION) for n in ("s3", "ssm", "events", "sns", "sagemaker"))
    )
    count_events(clients.events, world)
    return clients


def notices(world) -> list[dict]:
    """Every notification the topic delivered so far, as the JSON the hook published."""
    return [json.loads(json.loads(m["Body"])["Message"]) for m in world.notifications()]
