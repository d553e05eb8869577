"""The small SSM pointers to a decision record, and the notifications that go with them.

`last-promotion-decision` logs every decision in the order it was recorded; its history is the audit trail, and
the deploy gate finds its own execution's decision there. `promoted-config` (or `production-release` in prod) is
the configuration this environment hands on, and it never moves backwards: a pointer is written only when its
execution started after the current pointer's. Parameter Store has no conditional put, so a writer reads the
history after its put and puts the newest again if a slower, older writer landed after it; the last writer to
finish has then seen every put, so the parameter settles on the newest execution whatever the interleaving.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from inputs import Settings

EVENT_SOURCE = "ragops.promotion"
# Standard up to 4 KB, Advanced above, without ever asking for Standard again once a long run config made the
# parameter Advanced (Parameter Store refuses to move a parameter from Advanced back to Standard).
TIER = "Intelligent-Tiering"
SETTLE_ROUNDS = 5
DETAIL_TYPES = {
    "promoted": "RagOps Configuration Promoted",
    "released": "RagOps Production Release Approved",
    "rejected": "RagOps Promotion Rejected",
}
OLDEST = datetime.min.replace(tzinfo=UTC)


def pointer(record: dict[str, Any], bucket: str, key: str, version_id: str) -> dict[str, Any]:
    """The small SSM value: where the full record is and what identifies the configuration."""
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return {
        "decision": record["decision"],
        "execution_arn": record["execution_arn"],
        "execution_started_at": record.get("execution_started_at"),
        "source_environment": record["environment"],
        "record_s3_uri": f"s3://{bucket}/{key}",
        "record_version_id": version_id,
        "record_sha256": hashlib.sha256(body).hexdigest(),
        "image_uri": record["image_uri"],
        "git_sha": record["git_sha"],
        "mlflow_parent_run_id": record["mlflow_parent_run_id"],
        "run_config": record["run_config"],
        "metrics": record["metrics"],
        "failures": record["failures"],
        "decided_at": record["decided_at"],
    }


def decision_log(settings: Settings) -> str:
    return f"{settings.ssm_prefix}/{settings.environment}/last-promotion-decision"


def handed_on(record: dict[str, Any], settings: Settings) -> str | None:
    """The ordered pointer a passing decision moves: read in this account by the job deploying the next one."""
    name = {"promoted": "promoted-config", "released": "production-release"}.get(record["decision"])
    return f"{settings.ssm_prefix}/{settings.environment}/{name}" if name else None


def order(value: dict[str, Any]) -> tuple[datetime, str]:
    """Execution start, then ARN (a tie between two executions still has one answer); unordered pointers first."""
    started = value.get("execution_started_at")
    return (datetime.fromisoformat(started) if started else OLDEST, value.get("execution_arn", ""))


def history(ssm: Any, name: str) -> list[dict[str, Any]]:
    """Every stored version, oldest first; empty when the parameter does not exist."""
    try:
        versions = [
            v for page in ssm.get_paginator("get_parameter_history").paginate(Name=name) for v in page["Parameters"]
        ]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ParameterNotFound":
            raise
        return []
    return sorted(versions, key=lambda v: v["Version"])


def has(versions: list[dict[str, Any]], execution_arn: str) -> bool:
    return any(json.loads(v["Value"]).get("execution_arn") == execution_arn for v in versions)


def put(ssm: Any, name: str, value: dict[str, Any]) -> None:
    ssm.put_parameter(Name=name, Value=json.dumps(value, sort_keys=True), Type="String", Tier=TIER, Overwrite=True)


def put_in_order(ssm: Any, name: str, value: dict[str, Any], versions: list[dict[str, Any]]) -> str | None:
    """Write `value` unless a later execution's pointer is current; that execution's ARN when it supersedes."""
    if versions:
        current = json.loads(versions[-1]["Value"])
        if order(current) > order(value):
            return current["execution_arn"]
    put(ssm, name, value)
    for _ in range(SETTLE_ROUNDS):
        stored = [json.loads(v["Value"]) for v in history(ssm, name)]
        newest = max(stored, key=order)
        if order(stored[-1]) == order(newest):
            return None
        put(ssm, name, newest)
    raise RuntimeError(f"{name} did not settle on the newest execution after {SETTLE_ROUNDS} rounds")


def notify(clients: Any, settings: Settings, value: dict[str, Any]) -> None:
    detail_type = DETAIL_TYPES[value["decision"]]
    result = clients.events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(value),
                "EventBusName": settings.event_bus,
                "Resources": [value["execution_arn"]],
            }
        ]
    )
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the promotion event: {result['Entries']}")
    clients.sns.publish(
        TopicArn=settings.topic_arn,
        Subject=f"RagOps {settings.environment}: {detail_type}"[:100],
        Message=json.dumps(value, indent=2),
    )
