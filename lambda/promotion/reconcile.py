"""The scheduled reconciliation: finish every recent decision whose effects a failed delivery left incomplete,
and bring Parameter Store in line with the ordered pointer.

It is needed because nothing else may come: SageMaker Lambda steps take no retry policy, and the EventBridge rule
fires only on Succeeded, so the delivery of an execution whose promotion step failed is never repeated.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pointers
from effects import Progress, complete, progress_key
from inputs import Settings

# Records are written once, so their LastModified is when they were decided; older ones were reconciled long ago
# (the schedule runs every 15 minutes) and are not read again.
WINDOW = timedelta(days=7)


def project(settings: Settings, clients: Any) -> bool:
    """Put the ordered pointer's value in its parameter when they differ; True when it had to."""
    name = pointers.handed_on(settings)
    key = pointers.ordered_key(settings, name)
    return pointers.project(clients.s3, clients.ssm, settings.data_bucket, key, pointers.parameter(settings, name))


def run(settings: Settings, clients: Any, metrics: Any, holder: str, now: datetime) -> dict[str, Any]:
    """Complete each incomplete decision of the window; what was done, by decision."""
    completed: dict[str, list[str]] = {}
    busy: list[str] = []
    pages = clients.s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.data_bucket, Prefix=f"promotions/{settings.environment}/decisions/"
    )
    for page in pages:
        for listed in page.get("Contents", []):
            key = listed["Key"]
            if key.endswith(".progress.json") or now - listed["LastModified"] > WINDOW:
                continue
            if Progress.load(clients.s3, settings.data_bucket, progress_key(key)).complete:
                continue
            stored = clients.s3.get_object(Bucket=settings.data_bucket, Key=key)
            record = json.loads(stored["Body"].read())
            value = pointers.pointer(record, settings.data_bucket, key, stored.get("VersionId", "null"))
            outcome = complete(record, value, key, settings, clients, metrics, holder, now)
            if outcome is None:
                busy.append(record["execution_arn"])
            elif outcome[1]:
                completed[record["execution_arn"]] = outcome[1]
    return {"reconciled": completed, "in_progress_elsewhere": busy, "projected": project(settings, clients)}
