"""Promotion gate against moto: pass, fail, prod release, repeat delivery, and every kind of bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

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

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    @property
    def report_uri(self) -> str:
        return report_uri(self.arn)


def report_uri(arn: str) -> str:
    return f"s3://{BUCKET}/runs/{arn.rsplit('/', 1)[1]}/report/report.json"


def start_execution(sagemaker, pipeline: str = PIPELINE, parameters: list | None = None) -> str:
    """A real (moto) execution: the hook reads its start time, which orders promotions."""
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
    return sagemaker.start_pipeline_execution(PipelineName=pipeline, PipelineParameters=parameters or [])[
        "PipelineExecutionArn"
    ]


@pytest.fixture
def world(aws):
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
    clients = promotion.Clients(
        s3=s3,
        ssm=boto3.client("ssm", region_name=REGION),
        events=boto3.client("events", region_name=REGION),
        sns=sns,
        sagemaker=boto3.client("sagemaker", region_name=REGION),
    )
    arn = start_execution(clients.sagemaker)
    put_report(report(), report_uri(arn))
    promotion.metrics.clear_metrics()
    return World(clients, lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []), arn)


def put_report(body: object, uri: str) -> None:
    key = uri.split(f"s3://{BUCKET}/", 1)[1]
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
    listed = clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="promotions/")
    return [o["Key"] for o in listed.get("Contents", [])]


def emitted(capsys) -> dict[str, float]:
    """The metrics Powertools flushed as CloudWatch embedded metric format, by name."""
    promotion.metrics.flush_metrics()
    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "RagOps"
    assert [sorted(d) for d in directive["Dimensions"]] == [["environment", "service"]]
    assert (blob["service"], blob["environment"]) == ("ragops-promotion", "dev")
    return {m["Name"]: blob[m["Name"]] for m in directive["Metrics"]}


def test_passing_run_is_promoted_to_the_next_environment_with_its_full_record(world):
    clients = world.clients
    result = promotion.promote(step_event(world.arn), settings(), clients, NOW)

    assert result["decision"] == "promoted"
    assert result["duplicate"] is False
    pointer = parameter(clients, "/ragops/dev/promoted-config")
    assert pointer["execution_arn"] == world.arn
    assert pointer["image_uri"] == IMAGE
    assert pointer["git_sha"] == GIT_SHA
    assert pointer["metrics"] == {"hit_at_k": 0.9, "mrr": 0.75, "answer_embedding_cosine": 0.6}
    key = f"promotions/dev/decisions/{PIPELINE}/{world.execution_id}.json"
    assert pointer["record_s3_uri"] == f"s3://{BUCKET}/{key}"
    stored = clients.s3.get_object(Bucket=BUCKET, Key=key, VersionId=pointer["record_version_id"])
    record = json.loads(stored["Body"].read())
    assert record["run_config"] == report()["run_config"]
    assert record["mlflow_parent_run_id"] == "abc123"
    assert record["target_environment"] == "staging"
    started = clients.sagemaker.describe_pipeline_execution(PipelineExecutionArn=world.arn)["CreationTime"]
    assert record["execution_started_at"] == pointer["execution_started_at"] == started.isoformat()
    assert parameter(clients, "/ragops/dev/last-promotion-decision")["decision"] == "promoted"
    assert len(world.notifications()) == 1


def test_a_rejection_is_recorded_and_returned_not_raised(world, capsys):
    clients = world.clients
    put_report(report(mrr=0.5, answer_embedding_cosine=0.1), world.report_uri)
    result = promotion.promote(step_event(world.arn), settings(), clients, NOW)

    failures = ["answer_embedding_cosine 0.1000 < 0.5000", "mrr 0.5000 < 0.7000"]
    assert result["decision"] == "rejected"
    assert result["failures"] == failures
    assert result["failure_summary"] == "; ".join(failures)  # what the pipeline's Fail step quotes
    assert history(clients, "/ragops/dev/promoted-config") == []
    decision = parameter(clients, "/ragops/dev/last-promotion-decision")
    assert decision["decision"] == "rejected"
    assert decision["failures"] == failures
    assert len(world.notifications()) == 1
    assert emitted(capsys) == {"Rejected": [1.0]}


def test_each_decision_is_counted_once(world, capsys):
    promotion.promote(step_event(world.arn), settings(), world.clients, NOW)
    promotion.promote(step_event(world.arn), settings(), world.clients, NOW)  # repeat delivery: not counted
    assert emitted(capsys) == {"Promoted": [1.0]}


def test_promoted_pointer_carries_the_run_config(world):
    promotion.promote(step_event(world.arn), settings(), world.clients, NOW)
    assert parameter(world.clients, "/ragops/dev/promoted-config")["run_config"] == report()["run_config"]


def test_threshold_exactly_met_passes(world):
    put_report(report(**THRESHOLDS), world.report_uri)
    assert promotion.promote(step_event(world.arn), settings(), world.clients, NOW)["decision"] == "promoted"


def test_prod_records_a_production_release_instead_of_promoting(world):
    clients = world.clients
    arn = start_execution(clients.sagemaker, "ragops-prod-single")
    put_report(report(), report_uri(arn))
    result = promotion.promote(step_event(arn, environment="prod"), settings("prod", None), clients, NOW)

    assert result["decision"] == "released"
    assert parameter(clients, "/ragops/prod/production-release")["execution_arn"] == arn
    assert records(clients) == [f"promotions/prod/decisions/ragops-prod-single/{arn.rsplit('/', 1)[1]}.json"]


def test_repeat_delivery_neither_promotes_twice_nor_changes_the_record(world):
    clients = world.clients
    first = promotion.promote(step_event(world.arn), settings(), clients, NOW)
    put_report(report(mrr=0.1), world.report_uri)  # even if the report changed since, the decision stands
    again = promotion.promote(step_event(world.arn), settings(), clients, datetime(2026, 2, 1, tzinfo=UTC))

    assert again == {**first, "duplicate": True}
    assert len(history(clients, "/ragops/dev/promoted-config")) == 1
    assert len(history(clients, "/ragops/dev/last-promotion-decision")) == 1
    versions = clients.s3.list_object_versions(Bucket=BUCKET, Prefix="promotions/")["Versions"]
    assert len(versions) == 1
    assert len(world.notifications()) == 1


def record_only(world, arn: str) -> None:
    """An attempt that wrote the decision record and died before any parameter."""
    clients = world.clients
    candidate = promotion.parse_event(step_event(arn), settings(), clients.sagemaker)
    record = promotion.decide(candidate, promotion.read_report(clients.s3, report_uri(arn)), settings(), NOW)
    promotion.write_record_once(clients.s3, BUCKET, promotion.record_key(settings(), candidate), record)


def test_repeat_delivery_completes_a_decision_interrupted_before_its_parameters(world):
    record_only(world, world.arn)
    result = promotion.promote(step_event(world.arn), settings(), world.clients, NOW)

    assert result["duplicate"] is False
    assert parameter(world.clients, "/ragops/dev/promoted-config")["execution_arn"] == world.arn
    assert len(world.notifications()) == 1


def test_an_older_executions_retry_never_moves_promoted_config_back(world):
    """A writes its record and dies; B (started later) promotes; A's retry must leave the pointer on B."""
    clients, a = world.clients, world.arn
    b = start_execution(clients.sagemaker)
    put_report(report(), report_uri(b))
    record_only(world, a)
    promotion.promote(step_event(b), settings(), clients, NOW)

    retried = promotion.promote(step_event(a), settings(), clients, NOW)

    assert retried["superseded_by"] == b
    assert parameter(clients, "/ragops/dev/promoted-config")["execution_arn"] == b
    assert [json.loads(v["Value"])["execution_arn"] for v in history(clients, "/ragops/dev/promoted-config")] == [b]
    # A's decision is still logged, where the deploy gate of A's run finds it, and its notice says it was superseded.
    assert parameter(clients, "/ragops/dev/last-promotion-decision")["execution_arn"] == a
    notices = [json.loads(json.loads(m["Body"])["Message"]) for m in world.notifications()]
    assert [n.get("superseded_by") for n in notices] == [None, b]


class LateFirstPut:
    """SSM whose first put of `name` is delayed until `meanwhile` ran: a slower writer landing after a newer one."""

    def __init__(self, ssm, name: str, meanwhile: Callable[[], None]) -> None:
        self._ssm, self._name, self._meanwhile = ssm, name, meanwhile

    def put_parameter(self, **kwargs):
        if kwargs["Name"] == self._name and self._meanwhile:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return self._ssm.put_parameter(**kwargs)

    def __getattr__(self, name: str):
        return getattr(self._ssm, name)


def test_concurrent_promotions_settle_on_the_execution_that_started_last(world):
    clients, a = world.clients, world.arn
    b = start_execution(clients.sagemaker)
    put_report(report(), report_uri(b))
    name = "/ragops/dev/promoted-config"
    # A read the (empty) pointer; before its put lands, B promotes completely; then A's put lands.
    slow = LateFirstPut(clients.ssm, name, lambda: promotion.promote(step_event(b), settings(), clients, NOW))
    promotion.promote(step_event(a), settings(), promotion.Clients(**{**vars(clients), "ssm": slow}), NOW)

    assert parameter(clients, name)["execution_arn"] == b
    written = [json.loads(v["Value"])["execution_arn"] for v in history(clients, name)]
    assert written == [b, a, b]  # A's late put, then A put the newest back


def test_a_conditional_write_conflict_is_retried_not_read_back():
    s3 = boto3.client("s3", region_name=REGION)
    record = {"decision": "promoted"}
    with Stubber(s3) as stub:
        stub.add_client_error("put_object", service_error_code="ConditionalRequestConflict", http_status_code=409)
        stub.add_response("put_object", {"VersionId": "v2"})
        stored, version, created = promotion.write_record_once(s3, BUCKET, "k.json", record, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert (stored, version, created) == (record, "v2", True)


def test_pointers_are_intelligent_tiering_so_a_long_run_config_never_strands_them(world):
    clients = world.clients
    put_report({**report(), "run_config": {"long": "x" * 5000}}, world.report_uri)
    promotion.promote(step_event(world.arn), settings(), clients, NOW)
    b = start_execution(clients.sagemaker)
    put_report(report(), report_uri(b))  # short again: Standard would be refused once the parameter is Advanced
    promotion.promote(step_event(b), settings(), clients, NOW)
    tiers = {
        v["Tier"]
        for name in ("promoted-config", "last-promotion-decision")
        for v in history(clients, f"/ragops/dev/{name}")
    }
    assert tiers == {"Intelligent-Tiering"}


def test_eventbridge_success_reads_the_report_by_execution_id_and_the_image_from_parameters(world):
    clients = world.clients
    parameters = [{"Name": "ImageUri", "Value": IMAGE}, {"Name": "GitSha", "Value": GIT_SHA}]
    arn = start_execution(clients.sagemaker, parameters=parameters)
    put_report(report(), report_uri(arn))

    result = promotion.promote(status_change(arn), settings(), clients, NOW)

    assert result["decision"] == "promoted"
    pointer = parameter(clients, "/ragops/dev/promoted-config")
    assert (pointer["image_uri"], pointer["git_sha"]) == (IMAGE, GIT_SHA)


def test_eventbridge_execution_without_image_parameter_is_refused(world):
    with pytest.raises(promotion.PromotionError, match="parameter 'ImageUri' is missing"):
        promotion.promote(status_change(world.arn), settings(), world.clients, NOW)
    assert records(world.clients) == []


def test_an_execution_sagemaker_does_not_know_is_refused(world):
    with pytest.raises(promotion.PromotionError, match=f"pipeline execution {EXECUTION_ARN}"):
        promotion.promote(step_event(EXECUTION_ARN), settings(), world.clients, NOW)
    assert records(world.clients) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("not an object", "event must be a JSON object"),
        ({k: v for k, v in step_event().items() if k != "git_sha"}, "git_sha: Field required"),
        (step_event(git_sha="main"), "git_sha: String should match pattern"),
        (step_event(image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/ragops:latest"), "image_uri: String should"),
        (step_event(execution_arn="arn:aws:sagemaker:x"), "execution_arn: String should match pattern"),
        (step_event(report_s3_uri="https://example.com/report.json"), "report_s3_uri: String should match"),
        (step_event(report_s3_uri="s3://other-bucket/report.json"), "bucket 'other-bucket' is not the data bucket"),
        (step_event(unexpected="1"), "unexpected: Extra inputs are not permitted"),
        (step_event(environment="qa"), "'qa' is not this function's environment 'dev'"),
        (
            step_event(execution_arn=EXECUTION_ARN.replace("ragops-dev-", "ragops-staging-")),
            "does not belong to environment 'dev'",
        ),
        # Another environment whose name starts with this one's: `dev-eu` in the same account.
        (step_event(execution_arn=DEV_EU_EXECUTION_ARN), "pipeline 'ragops-dev-eu-single' does not belong"),
        (status_change(DEV_EU_EXECUTION_ARN), "pipeline 'ragops-dev-eu-single' does not belong"),
        (status_change(EXECUTION_ARN, status="Failed"), "detail.currentPipelineExecutionStatus: Input should be"),
        ({**status_change(EXECUTION_ARN), "detail-type": "Other"}, "detail-type: Input should be"),
        ({**status_change(EXECUTION_ARN), "detail": {}}, "detail.pipelineExecutionArn: Field required"),
    ],
)
def test_bad_events_are_refused_before_anything_is_written(world, event, message):
    clients, notifications = world.clients, world.notifications
    with pytest.raises(promotion.PromotionError, match=message):
        promotion.promote(event, settings(), clients, NOW)
    assert records(clients) == []
    assert history(clients, "/ragops/dev/last-promotion-decision") == []
    assert notifications() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (report(mrr=float("nan")), "metric 'mrr' is not finite"),
        (report(hit_at_k="0.9"), "metric 'hit_at_k' is missing or not a number"),
        (report(hit_at_k=True), "metric 'hit_at_k' is missing or not a number"),
        ({**report(), "metrics": {"hit_at_k": 0.9, "mrr": 0.8}}, "metric 'answer_embedding_cosine' is missing"),
        (
            {**report(), "skipped_metrics": {"answer_embedding_cosine": "no judge"}},
            "'answer_embedding_cosine' was skipped",
        ),
        ({**report(), "schema_version": 2}, "malformed: schema_version"),
        ({k: v for k, v in report().items() if k != "mlflow_parent_run_id"}, "mlflow_parent_run_id: Field required"),
        ({**report(), "question_count": 0}, "question_count: Input should be greater than 0"),
        (b"{not json", "malformed"),
        ([], "malformed"),
    ],
)
def test_bad_reports_are_refused_before_anything_is_written(world, body, message):
    clients, notifications = world.clients, world.notifications
    put_report(body, world.report_uri)
    with pytest.raises(promotion.PromotionError, match=message):
        promotion.promote(step_event(world.arn), settings(), clients, NOW)
    assert records(clients) == []
    assert notifications() == []


def test_missing_report_is_refused(world):
    clients = world.clients
    clients.s3.delete_object(Bucket=BUCKET, Key=world.report_uri.split(f"{BUCKET}/", 1)[1])
    with pytest.raises(promotion.PromotionError, match=r"report s3://.*NoSuchKey"):
        promotion.promote(step_event(world.arn), settings(), clients, NOW)
    assert records(clients) == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RAGOPS_ENVIRONMENT", "", "RAGOPS_ENVIRONMENT"),
        ("RAGOPS_ENVIRONMENT", "Dev!", "RAGOPS_ENVIRONMENT"),
        ("RAGOPS_THRESHOLDS", "{", "RAGOPS_THRESHOLDS is not JSON"),
        ("RAGOPS_THRESHOLDS", "{}", "RAGOPS_THRESHOLDS"),
        ("RAGOPS_THRESHOLDS", '{"mrr": 1.5}', "outside"),
        ("RAGOPS_TOPIC_ARN", "", "RAGOPS_TOPIC_ARN"),
        ("RAGOPS_PIPELINES", "", "RAGOPS_PIPELINES"),
        ("RAGOPS_PIPELINES", "ragops-dev-*", "RAGOPS_PIPELINES"),
    ],
)
def test_bad_configuration_names_the_variable(variable, value, message):
    environ = {
        "RAGOPS_ENVIRONMENT": "dev",
        "RAGOPS_NEXT_ENVIRONMENT": "staging",
        "RAGOPS_THRESHOLDS": json.dumps(THRESHOLDS),
        "RAGOPS_DATA_BUCKET": BUCKET,
        "RAGOPS_SSM_PREFIX": "/ragops",
        "RAGOPS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:t",
        "RAGOPS_EVENT_BUS": "default",
        "RAGOPS_PIPELINES": PIPELINES,
        variable: value,
    }
    with pytest.raises(promotion.PromotionError, match=message):
        promotion.Settings.from_environ(environ)


def test_lambda_handler_reads_its_configuration_from_the_environment(world, monkeypatch):
    clients = world.clients
    for name, value in {
        "RAGOPS_ENVIRONMENT": "dev",
        "RAGOPS_NEXT_ENVIRONMENT": "staging",
        "RAGOPS_THRESHOLDS": json.dumps(THRESHOLDS),
        "RAGOPS_DATA_BUCKET": BUCKET,
        "RAGOPS_SSM_PREFIX": "/ragops",
        "RAGOPS_TOPIC_ARN": clients.sns.list_topics()["Topics"][0]["TopicArn"],
        "RAGOPS_EVENT_BUS": "default",
        "RAGOPS_PIPELINES": PIPELINES,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(promotion, "_clients", lambda: clients)

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "promotion", 256, "req-1"
        invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:promotion"

    assert promotion.lambda_handler(step_event(world.arn), Context())["decision"] == "promoted"
