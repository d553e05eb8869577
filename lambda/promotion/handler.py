"""Promotion gate: promote a pipeline run's configuration only when its measured metrics reach the thresholds.

Invoked by the pipeline's Lambda step or by EventBridge when a pipeline execution of this environment succeeds,
and on a schedule to reconcile. The execution's own parameters and report are read (`inputs.py`), every
threshold metric is compared (higher is better), and the decision record is written once per execution
(`decision.py`); then its effects are completed exactly once (`effects.py`) and Parameter Store is brought in
line with the ordered pointer (`pointers.py`). Bad input raises `PromotionError` naming the field or object
before anything is written. A rejection is a decision, not an error: it is recorded, counted and returned; the
pipeline's own Fail step reads the returned decision and ends the execution Failed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pointers
import reconcile
from aws_lambda_powertools import Logger, Metrics, Tracer
from decision import decide, record_key, write_record_once
from effects import complete
from hookkit import client, observed
from inputs import PromotionError as PromotionError  # what callers catch: raised before anything is written
from inputs import Settings, parse_event, read_report

SERVICE = "ragops-promotion"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="RagOps", service=SERVICE)
RECONCILE = {"mode": "reconcile"}  # what the schedule sends


@dataclass(frozen=True)
class Clients:
    s3: Any
    ssm: Any
    events: Any
    sns: Any
    sagemaker: Any


def promote(
    event: Any, settings: Settings, clients: Clients, now: datetime, holder: str | None = None
) -> dict[str, Any]:
    """Validate, decide, record once, complete every effect once. Repeat deliveries of an execution change nothing."""
    holder = holder or uuid.uuid4().hex
    if isinstance(event, Mapping) and event == RECONCILE:
        return reconcile.run(settings, clients, metrics, holder, now)
    candidate = parse_event(event, settings, clients.sagemaker)
    report = read_report(clients.s3, candidate.report_s3_uri)
    record = decide(candidate, report, settings, now)
    key = record_key(settings, candidate)
    pointers.check_size(record, settings.data_bucket, key)

    record, version_id, created = write_record_once(clients.s3, settings.data_bucket, key, record)
    value = pointers.pointer(record, settings.data_bucket, key, version_id)
    outcome = complete(record, value, key, settings, clients, metrics, holder, now)
    projected = reconcile.project(settings, clients)
    performed = [] if outcome is None else outcome[1]
    superseded_by = None if outcome is None else outcome[0].state["superseded_by"]
    duplicate = not created and not performed and not projected
    logger.info(
        "promotion decision",
        extra={
            "pointer": value,
            "duplicate": duplicate,
            "effects": performed,
            "in_progress_elsewhere": outcome is None,
            "projected": projected,
            "superseded_by": superseded_by,
        },
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


def _clients() -> Clients:
    return Clients(*(client(name) for name in ("s3", "ssm", "events", "sns", "sagemaker")))


@observed(logger, tracer, metrics)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    holder = getattr(context, "aws_request_id", None)
    return promote(event, Settings.from_environ(os.environ), _clients(), datetime.now(UTC), holder)
