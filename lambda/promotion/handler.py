"""Promotion gate: promote a pipeline run's configuration only when its measured metrics reach the thresholds.

Invoked by the pipeline's Lambda step or by EventBridge when a pipeline execution of this environment succeeds.
The evaluation report is read from S3 and every threshold metric is compared (higher is better). The decision
record is written once per execution (`decision.py`), then small pointers are put in SSM Parameter Store
(`pointers.py`). Bad input raises `PromotionError` naming the field or object before anything is written. A
rejection is a decision, not an error: it is recorded, counted and returned; the pipeline's own Fail step reads
the returned decision and ends the execution Failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
import pointers
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from decision import decide, record_key, write_record_once
from inputs import PromotionError as PromotionError  # what callers catch: raised before anything is written
from inputs import Settings, parse_event, read_report

SERVICE = "ragops-promotion"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="RagOps", service=SERVICE)
# Metric per decision, counted once: on the attempt that records it in the decision log.
DECISION_METRICS = {"promoted": "Promoted", "released": "Released", "rejected": "Rejected"}


@dataclass(frozen=True)
class Clients:
    s3: Any
    ssm: Any
    events: Any
    sns: Any
    sagemaker: Any


def promote(event: Any, settings: Settings, clients: Clients, now: datetime) -> dict[str, Any]:
    """Validate, decide, record once, notify. Repeat deliveries of an execution change nothing."""
    candidate = parse_event(event, settings, clients.sagemaker)
    report = read_report(clients.s3, candidate.report_s3_uri)
    record = decide(candidate, report, settings, now)

    key = record_key(settings, candidate)
    record, version_id, created = write_record_once(clients.s3, settings.data_bucket, key, record)
    value = pointers.pointer(record, settings.data_bucket, key, version_id)
    written, superseded_by = [], None
    log = pointers.decision_log(settings)
    if created or not pointers.has(pointers.history(clients.ssm, log), candidate.execution_arn):
        pointers.put(clients.ssm, log, value)
        written.append(log)
    handed_on = pointers.handed_on(record, settings)
    if handed_on:
        versions = pointers.history(clients.ssm, handed_on)
        if not pointers.has(versions, candidate.execution_arn):
            superseded_by = pointers.put_in_order(clients.ssm, handed_on, value, versions)
            if superseded_by is None:
                written.append(handed_on)
    if written:  # a superseded promotion says so: the pointer stayed on the later execution
        pointers.notify(clients, settings, {**value, "superseded_by": superseded_by} if superseded_by else value)
    if log in written:
        metrics.add_dimension(name="environment", value=settings.environment)
        metrics.add_metric(name=DECISION_METRICS[record["decision"]], unit=MetricUnit.Count, value=1)
        if superseded_by:
            metrics.add_metric(name="Superseded", unit=MetricUnit.Count, value=1)
    duplicate = not created and not written
    logger.info(
        "promotion decision",
        extra={"pointer": value, "duplicate": duplicate, "parameters": written, "superseded_by": superseded_by},
    )
    return {
        "decision": record["decision"],
        "execution_arn": candidate.execution_arn,
        "record_s3_uri": value["record_s3_uri"],
        "failures": record["failures"],
        # The pipeline's Fail step quotes this string when the decision is a rejection.
        "failure_summary": "; ".join(record["failures"]) or "none",
        "duplicate": duplicate,
        "superseded_by": superseded_by,
    }


@cache
def _clients() -> Clients:
    return Clients(*(boto3.client(name) for name in ("s3", "ssm", "events", "sns", "sagemaker")))


@metrics.log_metrics
@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return promote(event, Settings.from_environ(os.environ), _clients(), datetime.now(UTC))
