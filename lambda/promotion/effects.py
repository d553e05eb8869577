"""Every effect of a recorded decision, completed exactly once by whichever delivery or reconciliation gets there.

The effects, in order: the decision log (SSM), the ordered pointer (S3, conditional), the EventBridge event, the
SNS notice and the decision's metric. Which of them are done is kept in one progress object per decision beside
its record, updated only with If-Match (store.py). A delivery first takes the decision's lease in that object;
while another delivery holds an unexpired lease, it leaves the effects to that one (or, if it dies, to the next
delivery or the scheduled reconciliation). The holder marks each effect done right after it succeeds, so a
failure anywhere leaves exactly the missing effects to complete. The decision log and the pointer are idempotent
besides (the log's history, the pointer's owner); an event or notice is sent twice only if the function dies
between sending it and marking it, which no store without a transaction can exclude.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pointers
import store
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from inputs import Settings

EVENT_SOURCE = "ragops.promotion"
DETAIL_TYPES = {
    "promoted": "RagOps Configuration Promoted",
    "released": "RagOps Production Release Approved",
    "rejected": "RagOps Promotion Rejected",
}
DECISION_METRICS = {"promoted": "Promoted", "released": "Released", "rejected": "Rejected"}
STEPS = ("decision_log", "pointer", "event", "notice", "metrics")
# Longer than the function's one-minute timeout: a lease outlives its holder only when the holder is gone.
LEASE = timedelta(minutes=2)


class LostLease(RuntimeError):
    """Another delivery took over the decision's effects (this one's lease expired): it stops here."""


def progress_key(record_key: str) -> str:
    return record_key.removesuffix(".json") + ".progress.json"


@dataclass
class Progress:
    """The progress object of one decision and the ETag this delivery last saw of it."""

    s3: Any
    bucket: str
    key: str
    state: dict[str, Any]
    etag: str | None

    @classmethod
    def load(cls, s3: Any, bucket: str, key: str) -> Progress:
        state, etag = store.read(s3, bucket, key)
        return cls(s3, bucket, key, state or {"done": {}, "superseded_by": None, "lease": None}, etag)

    @property
    def complete(self) -> bool:
        return all(self.state["done"].get(step) for step in STEPS)

    def acquire(self, holder: str, now: datetime) -> bool:
        """Take the lease unless another holder's is still valid; False when it could not."""
        lease = self.state.get("lease")
        if lease and lease["holder"] != holder and datetime.fromisoformat(lease["until"]) > now:
            return False
        return self._write({**self.state, "lease": {"holder": holder, "until": (now + LEASE).isoformat()}})

    def release(self) -> None:
        """Give the lease back after a failure, so the next delivery need not wait for it to expire."""
        with contextlib.suppress(ClientError):  # the lease expires anyway; the failure being raised is what matters
            self._write({**self.state, "lease": None})

    def mark(self, step: str, **extra: Any) -> None:
        state = {**self.state, "done": {**self.state["done"], step: True}, **extra}
        if step == STEPS[-1]:
            state["lease"] = None
        if not self._write(state):
            raise LostLease(f"s3://{self.bucket}/{self.key}: another delivery took over before '{step}' was marked")

    def _write(self, state: dict[str, Any]) -> bool:
        etag = store.put_if(self.s3, self.bucket, self.key, state, self.etag)
        if etag is None:
            return False
        self.state, self.etag = state, etag
        return True


def complete(
    record: dict[str, Any],
    value: dict[str, Any],
    record_key: str,
    settings: Settings,
    clients: Any,
    metrics: Any,
    holder: str,
    now: datetime,
) -> tuple[Progress, list[str]] | None:
    """Do what is missing of this decision's effects; (progress, effects done by this call), or None when another
    delivery holds the lease."""
    progress = Progress.load(clients.s3, settings.data_bucket, progress_key(record_key))
    if progress.complete:
        return progress, []
    if not progress.acquire(holder, now):
        return None
    performed: list[str] = []
    try:
        _perform(progress, record, value, settings, clients, metrics, performed)
    except LostLease:
        raise
    except Exception:
        progress.release()
        raise
    return progress, performed


def _perform(
    progress: Progress,
    record: dict[str, Any],
    value: dict[str, Any],
    settings: Settings,
    clients: Any,
    metrics: Any,
    performed: list[str],
) -> None:
    """Each missing effect, marked done as soon as it succeeded; `performed` lists what this call did."""
    done = progress.state["done"]
    if not done.get("decision_log"):
        pointers.log_once(clients.ssm, pointers.decision_log(settings), value)
        progress.mark("decision_log")
        performed.append("decision_log")
    if not done.get("pointer"):
        superseded_by = None
        if record["decision"] != "rejected":
            key = pointers.ordered_key(settings, pointers.handed_on(settings))
            superseded_by = pointers.advance(clients.s3, settings.data_bucket, key, value)
        progress.mark("pointer", superseded_by=superseded_by)
        performed.append("pointer")
    notice = {**value, "superseded_by": progress.state["superseded_by"]}
    if not done.get("event"):
        send_event(clients.events, settings, notice)
        progress.mark("event")
        performed.append("event")
    if not done.get("notice"):
        clients.sns.publish(
            TopicArn=settings.topic_arn,
            Subject=f"RagOps {settings.environment}: {DETAIL_TYPES[value['decision']]}"[:100],
            Message=json.dumps(notice, indent=2),
        )
        progress.mark("notice")
        performed.append("notice")
    if not done.get("metrics"):
        progress.mark("metrics")  # marked first: Powertools flushes what was added even if the handler fails
        count(metrics, settings, record["decision"], progress.state["superseded_by"])
        performed.append("metrics")


def send_event(events: Any, settings: Settings, detail: dict[str, Any]) -> None:
    result = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": DETAIL_TYPES[detail["decision"]],
                "Detail": json.dumps(detail),
                "EventBusName": settings.event_bus,
                "Resources": [detail["execution_arn"]],
            }
        ]
    )
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the promotion event: {result['Entries']}")


def count(metrics: Any, settings: Settings, decision: str, superseded_by: str | None) -> None:
    metrics.add_dimension(name="environment", value=settings.environment)
    metrics.add_metric(name=DECISION_METRICS[decision], unit=MetricUnit.Count, value=1)
    if superseded_by:
        metrics.add_metric(name="Superseded", unit=MetricUnit.Count, value=1)
