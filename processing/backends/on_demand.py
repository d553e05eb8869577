"""On-demand SageMaker endpoints: bring one up from its endpoint config before a stage invokes it.

An environment whose endpoint is `on_demand` (stacks/config.py) keeps only the model and the endpoint config in
its stack, which bill nothing. The first stage that needs the endpoint creates it here, tagged with the project,
the environment and this module as its creator (`ragops:created-by`), and waits until it is InService. The
creator tag is what makes it the clean-up hook's to delete once idle: the hook acts only on resources that carry
it, never on a stack's own (CloudFormation puts no system tags on SageMaker endpoints, docs/ownership.md). A
later deploy that replaced the endpoint config moves a running endpoint onto the new one, so a run never answers
with a stale model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from processing.backends.errors import CloudBackendError

PROJECT_TAGS = {"ragops:project": "ragops"}
ENVIRONMENT_TAG = "ragops:environment"
# The positive ownership mark: set by the code that creates a resource at run time, naming that code. The clean-up
# hook (lambda/cleanup/inventory.py) and its IAM conditions act only on resources carrying one of their creators.
CREATED_BY_TAG = "ragops:created-by"
ON_DEMAND_CREATOR = "processing.backends.on_demand"
# Model download and container start-up are each bounded by the endpoint config (up to 60 and 30 minutes);
# 45 minutes of polling covers a 7B model's usual start and stays inside the processing job's hour.
POLL_SECONDS = 30
MAX_POLLS = 90
WAITING = {"Creating", "Updating", "SystemUpdating", "RollingBack"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnDemandEndpoint:
    name: str
    config_name: str
    environment: str

    @property
    def tags(self) -> list[dict[str, str]]:
        tags = {**PROJECT_TAGS, ENVIRONMENT_TAG: self.environment, CREATED_BY_TAG: ON_DEMAND_CREATOR}
        return [{"Key": k, "Value": v} for k, v in tags.items()]


def ensure_in_service(
    client: Any, endpoint: OnDemandEndpoint, *, poll_seconds: int = POLL_SECONDS, max_polls: int = MAX_POLLS
) -> str:
    """Create or update `endpoint` as needed and wait for InService; returns what was done (for the run's log).

    Raises CloudBackendError naming the endpoint when it failed, cannot be created, or does not come up in time."""
    described = _describe(client, endpoint.name)
    action = "in service"
    if described and described["EndpointStatus"] == "Deleting":
        _wait(client, "endpoint_deleted", endpoint, poll_seconds, max_polls)
        described = None
    if described is None:
        action = _create(client, endpoint)
    elif described["EndpointStatus"] in ("Failed", "OutOfService"):
        reason = described.get("FailureReason", "no reason given")
        raise CloudBackendError(
            f"endpoint {endpoint.name} is {described['EndpointStatus']} ({reason}); the clean-up hook deletes it on "
            "its next pass (or delete it), then run again"
        )
    elif described["EndpointStatus"] == "InService" and described["EndpointConfigName"] != endpoint.config_name:
        _call(client.update_endpoint, endpoint, EndpointName=endpoint.name, EndpointConfigName=endpoint.config_name)
        action = f"updated from {described['EndpointConfigName']} to {endpoint.config_name}"
    elif described["EndpointStatus"] in WAITING:
        action = f"waited while {described['EndpointStatus']}"
    _wait(client, "endpoint_in_service", endpoint, poll_seconds, max_polls)
    log.info("on-demand endpoint %s: %s", endpoint.name, action)
    return action


def _describe(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return client.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if _missing(error):
            return None
        raise CloudBackendError(f"endpoint {name}: DescribeEndpoint failed: {error}") from error


def _create(client: Any, endpoint: OnDemandEndpoint) -> str:
    try:
        client.create_endpoint(EndpointName=endpoint.name, EndpointConfigName=endpoint.config_name, Tags=endpoint.tags)
    except ClientError as error:
        if "already existing" not in str(error):  # another execution created it a moment ago: wait for that one
            raise CloudBackendError(f"endpoint {endpoint.name}: CreateEndpoint failed: {error}") from error
        return "created by another run"
    return f"created from {endpoint.config_name}"


def _call(method: Any, endpoint: OnDemandEndpoint, **request: Any) -> None:
    try:
        method(**request)
    except ClientError as error:
        raise CloudBackendError(f"endpoint {endpoint.name}: {error}") from error


def _wait(client: Any, waiter: str, endpoint: OnDemandEndpoint, poll_seconds: int, max_polls: int) -> None:
    try:
        client.get_waiter(waiter).wait(
            EndpointName=endpoint.name, WaiterConfig={"Delay": poll_seconds, "MaxAttempts": max_polls}
        )
    except WaiterError as error:
        last = error.last_response or {}
        status = last.get("EndpointStatus", "unknown")
        reason = last.get("FailureReason") or (last.get("Error") or {}).get("Message", "")
        raise CloudBackendError(
            f"endpoint {endpoint.name} did not become {waiter.removeprefix('endpoint_').replace('_', ' ')} "
            f"within {poll_seconds * max_polls // 60} min: status {status}{f' ({reason})' if reason else ''}"
        ) from error


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ValidationException" and "Could not find" in str(error)
