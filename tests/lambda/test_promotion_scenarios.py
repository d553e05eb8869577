"""The promotion hook's guarantees under adversarial inputs, concurrency and partial failure, against moto.

Failures are injected through botocore's own event hooks on a delivery's clients (before its parameters are
built: the call is refused as AWS refuses it once the client's retries gave up); everything else is moto's S3,
SSM, SNS, EventBridge and SageMaker. A redelivery or reconciliation runs minutes later (`LATER`), as Lambda's and the
schedule's would, after the failed delivery's lease (two minutes) has lapsed or been given back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import MockRawResponse

from tests.lambda_handlers import ACCOUNT, REGION
from tests.lambda_promotion import (
    BUCKET,
    IMAGE,
    NOW,
    emitted,
    fresh_clients,
    notices,
    parameter,
    promotion,
    put_report,
    record_only,
    records,
    report,
    report_uri,
    settings,
    start_execution,
    status_change,
    step_event,
)

LATER = NOW + timedelta(minutes=15)
POINTER = "/ragops/dev/promoted-config"
RECONCILE = {"mode": "reconcile"}
STAGING_EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/ragops-staging-single/execution/x1"


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


def on_calls(clients, hook: Callable[[str, dict], None]) -> None:
    """Run `hook(operation, params)` before every call any of `clients` makes; it may raise to fail the call."""
    for client in vars(clients).values():
        client.meta.events.register("before-parameter-build.*.*", lambda model, params, **_: hook(model.name, params))


def writes_pointer(operation: str, body: dict) -> bool:
    """The write that moves the handed-on pointer, in the S3 object or in the parameter (wherever it lives)."""
    if operation == "PutObject":
        return "/pointers/" in body.get("Key", "")
    return operation == "PutParameter" and body.get("Name") == POINTER


def fail_on(clients, failing: Callable[[str, dict], bool]) -> None:
    def hook(operation: str, body: dict) -> None:
        if failing(operation, body):
            raise throttled(operation)

    on_calls(clients, hook)


def second_execution(world) -> str:
    """An execution of the same pipeline that started after `world.arn`, with a passing report."""
    arn = start_execution(world.clients.sagemaker)
    put_report(report(), arn)
    return arn


# -- trust ---------------------------------------------------------------------------------------------------------


def test_step_naming_another_executions_passing_report_is_refused(world):
    a, b = world.arn, second_execution(world)
    put_report(report(mrr=0.1), a)  # A itself misses the thresholds
    with pytest.raises(promotion.PromotionError, match="event field 'report_s3_uri'"):
        promotion.promote(step_event(a, report_s3_uri=report_uri(b)), settings(), world.clients, NOW)
    assert records(world.clients) == []


def test_step_claiming_an_image_and_commit_the_execution_never_ran_is_refused(world):
    other_image = IMAGE.replace("a" * 64, "b" * 64)
    with pytest.raises(promotion.PromotionError, match=r"event field 'image_uri'.*is not what execution"):
        promotion.promote(step_event(world.arn, image_uri=other_image), settings(), world.clients, NOW)
    with pytest.raises(promotion.PromotionError, match="event field 'git_sha'"):
        promotion.promote(step_event(world.arn, git_sha="f" * 40), settings(), world.clients, NOW)
    assert records(world.clients) == []


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        ({"environment": "staging"}, "identity.environment"),
        ({"pipeline_execution_arn": STAGING_EXECUTION}, "identity.pipeline_execution_arn"),
        ({"environment": None, "pipeline_execution_arn": None}, "identity.environment"),
    ],
)
def test_report_naming_another_environments_pipeline_or_execution_is_refused(world, identity, field):
    own = {"environment": "dev", "pipeline_execution_arn": world.arn}
    put_report({**report(), "identity": {**own, **identity}}, world.arn)
    with pytest.raises(promotion.PromotionError, match=field):
        promotion.promote(step_event(world.arn), settings(), world.clients, NOW)
    assert records(world.clients) == []


@pytest.mark.parametrize("value", [7.5, -0.1, 1.0000001])
def test_gated_metric_outside_its_range_is_refused(world, value):
    put_report(report(hit_at_k=value), world.arn)
    with pytest.raises(promotion.PromotionError, match=r"metric 'hit_at_k' = .* is outside \[0, 1\]"):
        promotion.promote(step_event(world.arn), settings(), world.clients, NOW)
    assert records(world.clients) == []


# -- sizes ---------------------------------------------------------------------------------------------------------


def test_an_oversized_pointer_is_refused_before_the_first_write(world):
    put_report({**report(), "mlflow_parent_run_id": "r" * 5000}, world.arn)
    with pytest.raises(promotion.PromotionError, match="above Parameter Store's 4096"):
        promotion.promote(step_event(world.arn), settings(), world.clients, NOW)
    assert records(world.clients) == []


def test_an_image_uri_longer_than_ecr_allows_is_refused_before_the_first_write(world):
    long_image = IMAGE.replace("ragops-processing", "r" * 5000)
    arn = start_execution(
        world.clients.sagemaker,
        parameters=[{"Name": "ImageUri", "Value": long_image}, {"Name": "GitSha", "Value": "0" * 40}],
    )
    put_report(report(), arn)
    with pytest.raises(promotion.PromotionError, match="parameter 'ImageUri' is missing or malformed"):
        promotion.promote(status_change(arn), settings(), world.clients, NOW)
    assert records(world.clients) == []


# -- concurrent writers --------------------------------------------------------------------------------------------


def test_concurrent_writers_older_put_lands_last_then_its_next_call_is_throttled_and_its_retry_is_superseded(
    world, capsys
):
    """The issue's race: A (older) writes the pointer after B (newer) promoted; A's next call is throttled and A
    fails; A's retry must leave the pointer on B, and say so."""
    a, b = world.arn, second_execution(world)
    first = fresh_clients(world)
    phase = {"b_done": False}

    def interleave(operation: str, body: dict) -> None:
        if phase["b_done"]:
            if not writes_pointer(operation, body) or phase.get("landed"):
                raise throttled(operation)
            phase["landed"] = True  # A's own pointer write goes through (or loses its condition) first
        elif writes_pointer(operation, body):
            promotion.promote(step_event(b), settings(), world.clients, NOW)
            phase["b_done"] = True
            phase["landed"] = True

    on_calls(first, interleave)
    with pytest.raises(ClientError, match="ThrottlingException"):
        promotion.promote(step_event(a), settings(), first, NOW)

    retried = promotion.promote(step_event(a), settings(), world.clients, LATER)

    assert retried["superseded_by"] == b
    assert parameter(world.clients, POINTER)["execution_arn"] == b
    assert emitted(capsys) == {"Promoted": [1.0, 1.0], "Superseded": [1.0]}
    assert [n["superseded_by"] for n in notices(world)] == [None, b]


def test_concurrent_writers_the_older_loser_is_told_superseded_by_and_counted(world, capsys):
    a, b = world.arn, second_execution(world)
    first = fresh_clients(world)
    pending = [lambda: promotion.promote(step_event(b), settings(), world.clients, NOW)]

    def before_a_writes(operation: str, body: dict) -> None:
        if writes_pointer(operation, body) and pending:
            pending.pop()()  # B promotes completely between A's read of the pointer and A's write

    on_calls(first, before_a_writes)
    result = promotion.promote(step_event(a), settings(), first, NOW)

    assert result["superseded_by"] == b
    assert parameter(world.clients, POINTER)["execution_arn"] == b
    assert emitted(capsys) == {"Promoted": [1.0, 1.0], "Superseded": [1.0]}
    assert [n["superseded_by"] for n in notices(world)] == [None, b]


# -- where the throttling lands, and what completes the rest ------------------------------------------------------


def test_throttled_pointer_write_fails_the_step_and_reconciliation_completes_every_effect_once(world, capsys):
    first = fresh_clients(world)
    fail_on(first, writes_pointer)
    with pytest.raises(ClientError, match="ThrottlingException"):
        promotion.promote(step_event(world.arn), settings(), first, NOW)
    assert notices(world) == []

    summary = promotion.promote(RECONCILE, settings(), world.clients, LATER)

    assert list(summary["reconciled"]) == [world.arn]
    assert parameter(world.clients, POINTER)["execution_arn"] == world.arn
    assert [n["execution_arn"] for n in notices(world)] == [world.arn]
    assert len(world.events()) == 1
    assert emitted(capsys) == {"Promoted": [1.0]}
    again = promotion.promote(RECONCILE, settings(), world.clients, LATER)  # nothing left: nothing sent again
    assert again == {"reconciled": {}, "in_progress_elsewhere": [], "projected": False}
    assert notices(world) == []
    assert world.events() == []


def test_throttled_put_events_then_redelivery_sends_the_event_and_notice_once_and_counts_once(world, capsys):
    first = fresh_clients(world)
    fail_on(first, lambda operation, _: operation == "PutEvents")
    with pytest.raises(ClientError, match="ThrottlingException"):
        promotion.promote(step_event(world.arn), settings(), first, NOW)

    again = promotion.promote(status_change(world.arn), settings(), world.clients, LATER)  # EventBridge delivery

    assert again["duplicate"] is False
    assert parameter(world.clients, POINTER)["execution_arn"] == world.arn
    assert len(world.events()) == 1
    assert len(notices(world)) == 1
    assert emitted(capsys) == {"Promoted": [1.0]}


def test_throttled_sns_publish_then_reconciliation_publishes_once_without_a_second_event(world, capsys):
    first = fresh_clients(world)
    fail_on(first, lambda operation, _: operation == "Publish")
    with pytest.raises(ClientError, match="ThrottlingException"):
        promotion.promote(step_event(world.arn), settings(), first, NOW)

    promotion.promote(RECONCILE, settings(), world.clients, LATER)

    assert len(world.events()) == 1
    assert len(notices(world)) == 1
    assert emitted(capsys) == {"Promoted": [1.0]}


def test_throttled_projection_put_is_resynced_by_the_next_delivery_and_counted_once(world, capsys):
    first = fresh_clients(world)
    fail_on(first, lambda operation, body: operation == "PutParameter" and body.get("Name") == POINTER)
    with pytest.raises(ClientError, match="ThrottlingException"):
        promotion.promote(step_event(world.arn), settings(), first, NOW)

    promotion.promote(status_change(world.arn), settings(), world.clients, LATER)

    assert parameter(world.clients, POINTER)["execution_arn"] == world.arn
    assert len(notices(world)) == 1
    assert emitted(capsys) == {"Promoted": [1.0]}


def test_throttled_decision_log_put_is_completed_by_reconciliation(world, capsys):
    first = fresh_clients(world)
    fail_on(first, lambda operation, body: operation == "PutParameter" and "last-promotion" in body.get("Name", ""))
    with pytest.raises(ClientError, match="ThrottlingException"):
        promotion.promote(step_event(world.arn), settings(), first, NOW)

    promotion.promote(RECONCILE, settings(), world.clients, LATER)

    assert parameter(world.clients, "/ragops/dev/last-promotion-decision")["execution_arn"] == world.arn
    assert parameter(world.clients, POINTER)["execution_arn"] == world.arn
    assert len(notices(world)) == 1
    assert emitted(capsys) == {"Promoted": [1.0]}


def test_reconciliation_completes_a_decision_interrupted_right_after_its_record(world, capsys):
    record_only(world, world.arn)
    summary = promotion.promote(RECONCILE, settings(), world.clients, LATER)

    assert summary["reconciled"] == {world.arn: ["decision_log", "pointer", "event", "notice", "metrics"]}
    assert parameter(world.clients, POINTER)["execution_arn"] == world.arn
    assert len(notices(world)) == 1


def test_reconciliation_resyncs_a_projection_changed_behind_its_back(world):
    promotion.promote(step_event(world.arn), settings(), world.clients, NOW)
    world.clients.ssm.put_parameter(Name=POINTER, Value=json.dumps({"execution_arn": "stale"}), Overwrite=True)

    summary = promotion.promote(RECONCILE, settings(), world.clients, LATER)

    assert summary["projected"] is True
    assert parameter(world.clients, POINTER)["execution_arn"] == world.arn


def test_a_delivery_while_another_holds_the_lease_leaves_the_effects_to_it(world):
    record_only(world, world.arn)
    key = f"promotions/dev/decisions/ragops-dev-single/{world.arn.rsplit('/', 1)[1]}.progress.json"
    lease = {"holder": "other", "until": (NOW + timedelta(minutes=2)).isoformat()}
    progress = {"done": {}, "superseded_by": None, "lease": lease}
    world.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(progress).encode())

    result = promotion.promote(step_event(world.arn), settings(), world.clients, NOW)

    assert result["duplicate"] is True
    assert notices(world) == []


def test_slowdown_reading_the_report_is_an_error_of_the_call_not_a_bad_report(world):
    first = fresh_clients(world)

    def slow_down(operation: str, body: dict) -> None:
        if operation == "GetObject" and body.get("Key", "").startswith("runs/"):
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, operation)

    on_calls(first, slow_down)
    with pytest.raises(ClientError, match="SlowDown") as raised:
        promotion.promote(step_event(world.arn), settings(), first, NOW)
    assert not isinstance(raised.value, promotion.PromotionError)
    assert records(world.clients) == []


# -- transient errors inside one delivery ---------------------------------------------------------------------------


def throttle_sends(client, operation: str, times: int) -> list[int]:
    """Answer the first `times` sends of `operation` as SSM answers a throttled call (HTTP 400, JSON error
    `ThrottlingException`), before moto sees them: botocore's own retry handler then decides what to do."""
    answered: list[int] = []

    def respond(request, **_):
        if len(answered) < times and request.headers.get("X-Amz-Target", b"").endswith(operation.encode()):
            answered.append(1)
            body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
            return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, MockRawResponse(body))
        return None

    client.meta.events.register_first("before-send.ssm", respond)
    return answered


@pytest.fixture
def handler_clients(world, monkeypatch):
    """The clients the function builds for itself (with its retry configuration), and no waiting between tries."""
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _: None)
    promotion.client.cache_clear()
    yield promotion._clients()
    promotion.client.cache_clear()


def test_transient_throttling_is_retried_within_the_delivery_with_bounds(world, handler_clients):
    answered = throttle_sends(handler_clients.ssm, "PutParameter", 4)  # four throttles, then the fifth try lands
    result = promotion.promote(step_event(world.arn), settings(), handler_clients, NOW)
    assert len(answered) == 4
    assert result["decision"] == "promoted"
    assert parameter(world.clients, POINTER)["execution_arn"] == world.arn


def test_throttling_past_the_retry_bound_fails_the_delivery_and_reconciliation_completes_it(world, handler_clients):
    answered = throttle_sends(handler_clients.ssm, "PutParameter", 5)  # every one of the five tries
    with pytest.raises(ClientError, match="ThrottlingException"):
        promotion.promote(step_event(world.arn), settings(), handler_clients, NOW)
    assert len(answered) == 5

    promotion.promote(RECONCILE, settings(), world.clients, LATER)
    assert parameter(world.clients, "/ragops/dev/last-promotion-decision")["execution_arn"] == world.arn
    assert len(notices(world)) == 1
