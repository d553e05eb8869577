"""Fail-fast preflight for cloud backends: names, credentials and regions are checked before any work.

A run that selects a cloud backend (`embeddings=sagemaker`, `vector_store=opensearch`, `judge=bedrock`, ...)
calls `preflight` once while building its backends, so a missing endpoint name, absent credentials or a
resource in another region stop the run with one clear sentence instead of a boto3 trace mid-stage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from processing.backends.errors import CloudBackendError
from processing.retry import single_attempt

REGION = r"[a-z]{2}(?:-[a-z]+)+-\d+"
_ARN_REGION = re.compile(rf"^arn:aws[a-z-]*:[a-z0-9-]+:({REGION}):")
# Amazon OpenSearch Service domain endpoints: search-<domain>-<id>.<region>.es.amazonaws.com (vpc-... in a VPC).
_OPENSEARCH_HOST_REGION = re.compile(rf"\.({REGION})\.es\.amazonaws\.com$")

NO_CREDENTIALS_HINT = (
    "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached"
)


def arn_region(arn: str) -> str | None:
    """The region field of an ARN, or None when `arn` is not a regional ARN."""
    match = _ARN_REGION.match(arn)
    return match[1] if match else None


def opensearch_endpoint_region(endpoint: str) -> str | None:
    """The region of an Amazon OpenSearch Service domain endpoint; None for custom or local endpoints."""
    host = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}").hostname or ""
    match = _OPENSEARCH_HOST_REGION.search(host)
    return match[1] if match else None


@dataclass(frozen=True)
class AwsContext:
    """A session whose credentials resolved, and the region every client of this run uses."""

    session: boto3.Session
    region: str

    def client(self, service: str, *, read_timeout: float = 60.0) -> BaseClient:
        """A client with botocore retries off: `processing.retry` owns retries."""
        return self.session.client(service, region_name=self.region, config=single_attempt(read_timeout))


def preflight(
    selection: str,
    *,
    region: str | None,
    required: Mapping[str, str | None],
    resource_regions: Mapping[str, str | None] | None = None,
    session: boto3.Session | None = None,
) -> AwsContext:
    """Check a cloud backend can start; raise CloudBackendError naming the selection and the field.

    `selection` is how the user chose the backend (e.g. "embeddings=sagemaker"); `required` maps config field
    names to their values; `resource_regions` maps a resource description to the region it lives in (None when
    the resource does not encode one). Checks run cheapest first: fields, credentials, region, region match.
    """
    for field_name, value in required.items():
        if not value or not value.strip():
            raise CloudBackendError(f"{selection} needs {field_name}: it is not set")
    try:
        session = session or boto3.Session()
        credentials = session.get_credentials()
        if credentials is not None:
            credentials.get_frozen_credentials()  # refreshable credentials (SSO, assume-role) resolve here
    except (BotoCoreError, ClientError) as error:
        raise CloudBackendError(f"{selection} needs AWS credentials: resolving them failed: {error}") from error
    if credentials is None:
        raise CloudBackendError(f"{selection} needs AWS credentials: none found ({NO_CREDENTIALS_HINT})")
    resolved_region = region or session.region_name
    if not resolved_region:
        raise CloudBackendError(
            f"{selection} needs an AWS region: none configured (set it in the run config or AWS_REGION)"
        )
    for resource, resource_region in (resource_regions or {}).items():
        if resource_region and resource_region != resolved_region:
            raise CloudBackendError(
                f"{selection}: {resource} is in {resource_region} but the configured region is {resolved_region}"
            )
    return AwsContext(session=session, region=resolved_region)
