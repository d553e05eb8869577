"""Interface drain: hold a security group's deletion until no network interface is in it any more.

SageMaker (endpoint instances) and OpenSearch (VPC domains) remove their interfaces from a group minutes after
the endpoint or domain is deleted, and SageMaker needs the model's execution role until then. CloudFormation
deletes this custom resource after the endpoints or domain and before the roles and the group (its dependencies
say so). On Delete it waits, through the CDK provider framework's is-complete polls, until
DescribeNetworkInterfaces filtered by `group-id` finds none, and past its wait fails naming the interfaces left,
so the stack stops there rather than at the group or a subnet (DependencyViolation). Create and Update do
nothing. The provider framework calls this function for both on-event and is-complete; on-event's answer
(`Waiting`) comes back in every is-complete event.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hookkit import WaitingError, client, deadline_of, is_complete_call, waiting

GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
REQUEST_TYPES = {"Create", "Update", "Delete"}

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class DrainError(ValueError):
    """A request this function cannot act on; raised before any call is made."""


def _group(value: Any, where: str) -> str:
    if not isinstance(value, str) or not GROUP_ID.match(value):
        raise DrainError(f"{where}: expected a security group id (sg-...), got {value!r}")
    return value


def interfaces(ec2: Any, group_id: str) -> list[str]:
    """Ids of every network interface in the group, whatever its state (an available one still blocks it)."""
    pages = ec2.get_paginator("describe_network_interfaces").paginate(
        Filters=[{"Name": "group-id", "Values": [group_id]}]
    )
    return sorted(interface["NetworkInterfaceId"] for page in pages for interface in page["NetworkInterfaces"])


def _on_event(event: Mapping[str, Any], wait: timedelta, now: datetime) -> dict[str, Any]:
    if event["RequestType"] != "Delete":
        group = _group(event.get("ResourceProperties", {}).get("SecurityGroupId"), "ResourceProperties.SecurityGroupId")
        return waiting(group, now, None)
    group = _group(event.get("PhysicalResourceId"), "PhysicalResourceId")  # the group this resource was made for
    return waiting(group, now, wait)


def _is_complete(event: Mapping[str, Any], ec2: Any, wait: timedelta, now: datetime) -> dict[str, Any]:
    try:
        deadline = deadline_of(event)
    except WaitingError as error:
        raise DrainError(str(error)) from None
    if deadline is None:
        return {"IsComplete": True}
    group = _group(event.get("PhysicalResourceId"), "PhysicalResourceId")
    left = interfaces(ec2, group)
    if not left:
        logger.info("security group %s has no network interfaces left", group)
        return {"IsComplete": True}
    if now >= deadline:
        raise RuntimeError(
            f"security group {group} still has network interfaces after {wait}: {', '.join(left)} (left by the "
            "endpoints or domain deleted before; once they are gone, delete the stack again)"
        )
    logger.info("security group %s: waiting for %s", group, ", ".join(left))
    return {"IsComplete": False}


def drain(event: Any, ec2: Any, wait: timedelta, now: datetime) -> dict[str, Any]:
    """Answer one provider-framework call: on-event (no `Waiting` yet) or is-complete."""
    if not isinstance(event, Mapping) or event.get("RequestType") not in REQUEST_TYPES:
        raise DrainError(f"expected a CloudFormation request (RequestType one of {sorted(REQUEST_TYPES)})")
    if is_complete_call(event):
        return _is_complete(event, ec2, wait, now)
    return _on_event(event, wait, now)


def wait_from(environ: Mapping[str, str]) -> timedelta:
    value = environ.get("RAGOPS_DRAIN_WAIT_MINUTES", "")
    if not value.isdigit() or not 0 < int(value) < 60:
        raise DrainError(f"environment variable RAGOPS_DRAIN_WAIT_MINUTES: expected 1-59 minutes, got {value!r}")
    return timedelta(minutes=int(value))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return drain(event, client("ec2"), wait_from(os.environ), datetime.now(UTC))
