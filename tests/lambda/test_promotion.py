"""Promotion gate against moto: pass, fail, prod release, repeat delivery, and every kind of bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from tests.lambda_handlers import ACCOUNT, REGION
from tests.lambda_promotion import (
    BUCKET,
    DEV_EU_EXECUTION_ARN,
    EXECUTION_ARN,
    GIT_SHA,
    IMAGE,
    NOW,
    PIPELINE,
    PIPELINES,
    THRESHOLDS,
    emitted,
    history,
    parameter,
    promotion,
    put_report,
    record_only,
    records,
    report,
    settings,
    start_execution,
    status_change,
    step_event,
)


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
    put_report(report(mrr=0.5, answer_embedding_cosine=0.1), world.arn)
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


def test_the_run_config_is_in_the_record_only_not_in_the_parameters(world):
    promotion.promote(step_event(world.arn), settings(), world.clients, NOW)
    for name in ("promoted-config", "last-promotion-decision"):
        assert "run_config" not in parameter(world.clients, f"/ragops/dev/{name}")
    (key,) = records(world.clients)
    record = json.loads(world.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert record["run_config"] == report()["run_config"]


def test_threshold_exactly_met_passes(world):
    put_report(report(**THRESHOLDS), world.arn)
    assert promotion.promote(step_event(world.arn), settings(), world.clients, NOW)["decision"] == "promoted"


def test_prod_records_a_production_release_instead_of_promoting(world):
    clients = world.clients
    arn = start_execution(clients.sagemaker, "ragops-prod-single")
    put_report(report(), arn)
    result = promotion.promote(step_event(arn, environment="prod"), settings("prod", None), clients, NOW)

    assert result["decision"] == "released"
    assert parameter(clients, "/ragops/prod/production-release")["execution_arn"] == arn
    assert records(clients) == [f"promotions/prod/decisions/ragops-prod-single/{arn.rsplit('/', 1)[1]}.json"]


def test_repeat_delivery_neither_promotes_twice_nor_changes_the_record(world):
    clients = world.clients
    first = promotion.promote(step_event(world.arn), settings(), clients, NOW)
    put_report(report(mrr=0.1), world.arn)  # even if the report changed since, the decision stands
    again = promotion.promote(step_event(world.arn), settings(), clients, datetime(2026, 2, 1, tzinfo=UTC))

    assert again == {**first, "duplicate": True}
    assert len(history(clients, "/ragops/dev/promoted-config")) == 1
    assert len(history(clients, "/ragops/dev/last-promotion-decision")) == 1
    (record,) = records(clients)
    versions = clients.s3.list_object_versions(Bucket=BUCKET, Prefix=record)["Versions"]
    assert [v["Key"] for v in versions] == [record]
    assert len(world.notifications()) == 1


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
    put_report(report(), b)
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


def test_a_conditional_write_conflict_is_retried_not_read_back():
    s3 = boto3.client("s3", region_name=REGION)
    record = {"decision": "promoted"}
    with Stubber(s3) as stub:
        stub.add_client_error("put_object", service_error_code="ConditionalRequestConflict", http_status_code=409)
        stub.add_response("put_object", {"VersionId": "v2"})
        stored, version, created = promotion.write_record_once(s3, BUCKET, "k.json", record, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert (stored, version, created) == (record, "v2", True)


def test_eventbridge_success_reads_the_report_by_execution_id_and_the_image_from_parameters(world):
    clients = world.clients
    parameters = [{"Name": "ImageUri", "Value": IMAGE}, {"Name": "GitSha", "Value": GIT_SHA}]
    arn = start_execution(clients.sagemaker, parameters=parameters)
    put_report(report(), arn)

    result = promotion.promote(status_change(arn), settings(), clients, NOW)

    assert result["decision"] == "promoted"
    pointer = parameter(clients, "/ragops/dev/promoted-config")
    assert (pointer["image_uri"], pointer["git_sha"]) == (IMAGE, GIT_SHA)


def test_eventbridge_execution_without_image_parameter_is_refused(world):
    arn = start_execution(world.clients.sagemaker, parameters=[{"Name": "GitSha", "Value": GIT_SHA}])
    put_report(report(), arn)
    with pytest.raises(promotion.PromotionError, match="parameter 'ImageUri' is missing"):
        promotion.promote(status_change(arn), settings(), world.clients, NOW)
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
    put_report(body, world.arn)
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


def test_step_naming_a_report_outside_the_data_bucket_is_refused(world):
    with pytest.raises(promotion.PromotionError, match=r"'report_s3_uri': 's3://other-bucket/report\.json' is not"):
        promotion.promote(
            step_event(world.arn, report_s3_uri="s3://other-bucket/report.json"), settings(), world.clients, NOW
        )
    assert records(world.clients) == []
