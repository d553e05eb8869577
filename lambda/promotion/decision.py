"""The decision for one execution and its record: written once per execution, the idempotency marker.

The record is an S3 object created with `If-None-Match: *`; the bucket's versioning keeps it. A repeat delivery
reads the stored record back instead of deciding again, so the decision stands even if the report changed since.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import store
from botocore.exceptions import ClientError
from inputs import Candidate, EvaluationReport, PromotionError, Settings

RECORD_SCHEMA = 2  # 2: adds execution_started_at, the order of promotions
# S3 answers 409 ConditionalRequestConflict while another conditional write of the key is in flight: the object
# may not exist yet, so the put is tried again (S3's advice) rather than the record read back.
CONFLICT_ATTEMPTS = 5
CONFLICT_BACKOFF_SECONDS = 0.2


def check_identity(report: EvaluationReport, candidate: Candidate, settings: Settings) -> None:
    """The report must say it was written by this execution of this environment's pipeline: its location is
    derived from the execution id, and this checks the content agrees (a copied or misplaced report is refused)."""
    claimed = report.identity
    for field, value, expected in (
        ("environment", claimed.environment, settings.environment),
        ("pipeline_execution_arn", claimed.pipeline_execution_arn, candidate.execution_arn),
    ):
        if value != expected:
            raise PromotionError(
                f"evaluation report {candidate.report_s3_uri}: identity.{field} is {value!r}, expected {expected!r}"
            )


def threshold_metrics(report: EvaluationReport, thresholds: Mapping[str, float], uri: str) -> dict[str, float]:
    """The value of every threshold metric; refuses skipped, missing, non-numeric, non-finite and out-of-range
    values. Gated metrics are fractions in [0, 1] like their thresholds (stacks/config.py PromotionConfig): a
    value outside cannot be compared with one, whichever side it falls."""
    values = {}
    for name in thresholds:
        if name in report.skipped_metrics:
            raise PromotionError(
                f"evaluation report {uri}: metric '{name}' was skipped ({report.skipped_metrics[name]})"
            )
        value = report.metrics.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PromotionError(f"evaluation report {uri}: metric '{name}' is missing or not a number ({value!r})")
        if not math.isfinite(value):
            raise PromotionError(f"evaluation report {uri}: metric '{name}' is not finite ({value})")
        if not 0.0 <= value <= 1.0:
            raise PromotionError(f"evaluation report {uri}: metric '{name}' = {value} is outside [0, 1]")
        values[name] = float(value)
    return values


def decide(candidate: Candidate, report: EvaluationReport, settings: Settings, now: datetime) -> dict[str, Any]:
    """The full decision record for one execution (deterministic given its inputs and `now`)."""
    check_identity(report, candidate, settings)
    metrics = threshold_metrics(report, settings.thresholds, candidate.report_s3_uri)
    failures = [
        f"{name} {metrics[name]:.4f} < {threshold:.4f}"
        for name, threshold in sorted(settings.thresholds.items())
        if metrics[name] < threshold
    ]
    decision = "rejected" if failures else "promoted" if settings.next_environment else "released"
    return {
        "schema_version": RECORD_SCHEMA,
        "decision": decision,
        "environment": settings.environment,
        "target_environment": settings.next_environment or settings.environment,
        "execution_arn": candidate.execution_arn,
        "execution_started_at": candidate.started_at.isoformat(),
        "trigger": candidate.trigger,
        "report_s3_uri": candidate.report_s3_uri,
        "image_uri": candidate.image_uri,
        "git_sha": candidate.git_sha,
        "mlflow_experiment": report.mlflow_experiment,
        "mlflow_parent_run_id": report.mlflow_parent_run_id,
        "run_config": report.run_config,
        "metrics": metrics,
        "thresholds": dict(settings.thresholds),
        "failures": failures,
        "question_count": report.question_count,
        "decided_at": now.isoformat(timespec="seconds"),
    }


def record_key(settings: Settings, candidate: Candidate) -> str:
    return f"promotions/{settings.environment}/decisions/{candidate.pipeline_name}/{candidate.execution_id}.json"


def write_record_once(
    s3: Any,
    bucket: str,
    key: str,
    record: dict[str, Any],
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], str, bool]:
    """Create the record unless it exists; return (stored record, version id, created)."""
    body = store.body(record)
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            response = s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json")
            return record, response.get("VersionId", "null"), True
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "PreconditionFailed":
                break
            if code != "ConditionalRequestConflict" or attempt == CONFLICT_ATTEMPTS - 1:
                raise
        sleep(CONFLICT_BACKOFF_SECONDS * 2**attempt)
    stored = s3.get_object(Bucket=bucket, Key=key)
    return json.loads(stored["Body"].read()), stored.get("VersionId", "null"), False
