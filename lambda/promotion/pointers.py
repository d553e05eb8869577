"""The pointers to a decision record: the ordered one in S3, decided by a conditional write, and its projections
in SSM Parameter Store, which the deploy workflow reads.

`promotions/<env>/pointers/<name>.json` holds the configuration this environment hands on (`promoted-config`, or
`production-release` in prod). It never moves backwards: a writer replaces it only with an execution that started
later, and only if nobody wrote it since the writer read it (If-Match); a writer that loses reads again and
decides again, so the object ends on the newest execution whatever the interleaving.

Parameter Store has no conditional put, so its `promoted-config` is a projection of that object: every delivery
and every reconciliation puts the object's value there when they differ, and reads the object again after its
put so that the last writer to finish leaves the newest value. `last-promotion-decision` logs every decision in
the order recorded; its history is the audit trail where the deploy gate finds its own execution's decision.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import store
from botocore.exceptions import ClientError
from inputs import PromotionError, Settings

# Standard up to 4 KB, Advanced above, without ever asking for Standard again once a long value made the
# parameter Advanced (Parameter Store refuses to move a parameter from Advanced back to Standard).
TIER = "Intelligent-Tiering"
# botocore ssm 2014-11-06, PutParameter Value: "Standard parameters have a value limit of 4 KB". Pointers hold no
# run config (the record does), so they stay Standard; checked before the first write of a decision.
VALUE_LIMIT = 4096
# S3 user guide, "Working with objects in a versioning-enabled bucket": version ids are at most 1,024 bytes.
LONGEST_VERSION_ID = "v" * 1024
CAS_ATTEMPTS = 8
CAS_BACKOFF_SECONDS = 0.05
SYNC_ROUNDS = 5
OLDEST = datetime.min.replace(tzinfo=UTC)


def pointer(record: dict[str, Any], bucket: str, key: str, version_id: str) -> dict[str, Any]:
    """The small value: where the full record is and what identifies the configuration (no run config)."""
    return {
        "decision": record["decision"],
        "execution_arn": record["execution_arn"],
        "execution_started_at": record.get("execution_started_at"),
        "source_environment": record["environment"],
        "record_s3_uri": f"s3://{bucket}/{key}",
        "record_version_id": version_id,
        "record_sha256": hashlib.sha256(store.body(record)).hexdigest(),
        "image_uri": record["image_uri"],
        "git_sha": record["git_sha"],
        "mlflow_parent_run_id": record["mlflow_parent_run_id"],
        "metrics": record["metrics"],
        "failures": record["failures"],
        "decided_at": record["decided_at"],
    }


def check_size(record: dict[str, Any], bucket: str, key: str) -> None:
    """Refuse, before anything is written, a decision whose pointer Parameter Store would refuse."""
    value = pointer(record, bucket, key, LONGEST_VERSION_ID)
    size = len(serialise(value).encode())
    if size > VALUE_LIMIT:
        raise PromotionError(
            f"the pointer of {record['execution_arn']} would be {size} bytes, above Parameter Store's "
            f"{VALUE_LIMIT}; the longest fields: image_uri ({len(record['image_uri'])}), failures "
            f"({len(json.dumps(record['failures']))}), mlflow_parent_run_id ({len(record['mlflow_parent_run_id'])})"
        )


def serialise(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)


def decision_log(settings: Settings) -> str:
    return f"{settings.ssm_prefix}/{settings.environment}/last-promotion-decision"


def handed_on(settings: Settings) -> str:
    """What a passing decision moves: read in this account by the job deploying the next environment."""
    return "promoted-config" if settings.next_environment else "production-release"


def parameter(settings: Settings, name: str) -> str:
    return f"{settings.ssm_prefix}/{settings.environment}/{name}"


def ordered_key(settings: Settings, name: str) -> str:
    return f"promotions/{settings.environment}/pointers/{name}.json"


def order(value: dict[str, Any]) -> tuple[datetime, str]:
    """Execution start, then ARN (a tie between two executions still has one answer); unordered values first."""
    started = value.get("execution_started_at")
    return (datetime.fromisoformat(started) if started else OLDEST, value.get("execution_arn", ""))


def advance(
    s3: Any, bucket: str, key: str, value: dict[str, Any], sleep: Callable[[float], None] = time.sleep
) -> str | None:
    """Move the ordered pointer to `value` unless a later execution holds it; that execution's ARN if so."""
    for attempt in range(CAS_ATTEMPTS):
        current, etag = store.read(s3, bucket, key)
        if current is not None:
            if current["execution_arn"] == value["execution_arn"]:
                return None
            if order(current) > order(value):
                return current["execution_arn"]
        if store.put_if(s3, bucket, key, value, etag) is not None:
            return None
        sleep(CAS_BACKOFF_SECONDS * 2**attempt)
    raise RuntimeError(f"s3://{bucket}/{key}: {CAS_ATTEMPTS} conditional writes in a row lost to other writers")


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


def log_once(ssm: Any, name: str, value: dict[str, Any]) -> bool:
    """Append the decision to the log unless an earlier attempt did; True when this call did."""
    if any(json.loads(v["Value"]).get("execution_arn") == value["execution_arn"] for v in history(ssm, name)):
        return False
    put(ssm, name, value)
    return True


def put(ssm: Any, name: str, value: dict[str, Any]) -> None:
    ssm.put_parameter(Name=name, Value=serialise(value), Type="String", Tier=TIER, Overwrite=True)


def _current(ssm: Any, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as error:
        if error.response["Error"]["Code"] != "ParameterNotFound":
            raise
        return None


def project(s3: Any, ssm: Any, bucket: str, key: str, name: str) -> bool:
    """Make the parameter show the ordered pointer's value; True when it had to be put."""
    changed = False
    for _ in range(SYNC_ROUNDS):
        source, _etag = store.read(s3, bucket, key)
        if source is None or _current(ssm, name) == source:
            return changed
        put(ssm, name, source)
        changed = True
    raise RuntimeError(f"{name} did not settle on s3://{bucket}/{key} after {SYNC_ROUNDS} rounds")
