"""Service-linked role: create a service's role once per account, then hold the stack until IAM has had time to
make it usable, so that the resource depending on it (the OpenSearch VPC domain) is not refused in a fresh account.

`CreateServiceLinkedRole` returns as soon as IAM has the role, but IAM is eventually consistent: a service that
checks for the role right after (OpenSearch, creating a VPC domain) may not see it yet. On Create and Update this
function calls `CreateServiceLinkedRole`; `InvalidInput` ("the role name has been taken": any account that ever had
such a domain) is not an error here, since the is-complete polls confirm the role with `GetRole` either way. Each
is-complete poll answers complete once `GetRole` finds the role and its `CreateDate` lies `RAGOPS_SLR_SETTLE_SECONDS`
in the past (at once for a role that already existed); past `RAGOPS_SLR_WAIT_MINUTES` it fails, naming the role.
Delete does nothing: the role is account-wide, free, and other domains may rely on it. The CDK provider framework
calls this function as both on-event and is-complete handler; on-event's answer (`Waiting`) comes back in each
is-complete event.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

SERVICE = re.compile(r"^[a-z0-9.-]+\.amazonaws\.com$")
ROLE_NAME = re.compile(r"^AWSServiceRoleFor[A-Za-z0-9+=,.@_-]+$")
REQUEST_TYPES = {"Create", "Update", "Delete"}

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class RoleError(ValueError):
    """A request or configuration this function cannot act on; raised before any call is made."""


def _property(event: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = event.get("ResourceProperties", {}).get(name)
    if not isinstance(value, str) or not pattern.match(value):
        raise RoleError(f"ResourceProperties.{name}: expected {pattern.pattern}, got {value!r}")
    return value


def _on_event(event: Mapping[str, Any], iam: Any, wait: timedelta, now: datetime) -> dict[str, Any]:
    service = _property(event, "AWSServiceName", SERVICE)
    role = _property(event, "RoleName", ROLE_NAME)
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": role, "Waiting": {"deadline": None}}
    try:
        iam.create_service_linked_role(AWSServiceName=service)
        logger.info("created the service-linked role of %s", service)
    except ClientError as error:
        if error.response["Error"]["Code"] != "InvalidInput":
            raise
        logger.info("%s: %s (GetRole confirms the role)", service, error.response["Error"].get("Message", ""))
    return {"PhysicalResourceId": role, "Waiting": {"deadline": (now + wait).isoformat()}}


def _is_complete(event: Mapping[str, Any], iam: Any, wait: timedelta, settle: timedelta, now: datetime) -> dict:
    deadline = event["Waiting"].get("deadline")
    if deadline is None:
        return {"IsComplete": True}
    role = _property(event, "RoleName", ROLE_NAME)
    try:
        created = iam.get_role(RoleName=role)["Role"]["CreateDate"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchEntity":
            raise
        created = None
    if created is not None and now - created >= settle:
        logger.info("role %s exists since %s", role, created.isoformat())
        return {"IsComplete": True}
    if now >= datetime.fromisoformat(deadline):
        state = "does not exist" if created is None else f"was created only at {created.isoformat()}"
        raise RuntimeError(f"service-linked role {role} {state} after {wait}; deploy again once GetRole finds it")
    logger.info("role %s: %s", role, "not visible yet" if created is None else "settling")
    return {"IsComplete": False}


def respond(event: Any, iam: Any, wait: timedelta, settle: timedelta, now: datetime) -> dict[str, Any]:
    """Answer one provider-framework call: on-event (no `Waiting` yet) or is-complete."""
    if not isinstance(event, Mapping) or event.get("RequestType") not in REQUEST_TYPES:
        raise RoleError(f"expected a CloudFormation request (RequestType one of {sorted(REQUEST_TYPES)})")
    if isinstance(event.get("Waiting"), Mapping):
        return _is_complete(event, iam, wait, settle, now)
    return _on_event(event, iam, wait, now)


def _number(environ: Mapping[str, str], name: str, low: int, high: int) -> int:
    value = environ.get(name, "")
    if not value.isdigit() or not low <= int(value) <= high:
        raise RoleError(f"environment variable {name}: expected {low}-{high}, got {value!r}")
    return int(value)


def timing_from(environ: Mapping[str, str]) -> tuple[timedelta, timedelta]:
    """(wait, settle) from the environment the stack sets."""
    wait = timedelta(minutes=_number(environ, "RAGOPS_SLR_WAIT_MINUTES", 1, 54))
    settle = timedelta(seconds=_number(environ, "RAGOPS_SLR_SETTLE_SECONDS", 0, 900))
    if settle >= wait:
        raise RoleError("RAGOPS_SLR_SETTLE_SECONDS must be shorter than RAGOPS_SLR_WAIT_MINUTES")
    return wait, settle


@cache
def _iam() -> Any:
    return boto3.client("iam")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    wait, settle = timing_from(os.environ)
    return respond(event, _iam(), wait, settle, datetime.now(UTC))
