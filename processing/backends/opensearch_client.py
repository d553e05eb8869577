"""The OpenSearch client a store talks through: SigV4-signed over TLS for an Amazon OpenSearch Service domain,
or plain HTTP to a node on this machine's loopback (`make opensearch`), which has no AWS signer to check."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

from processing.backends.errors import CloudBackendError

if TYPE_CHECKING:
    import boto3
    from opensearchpy.connection import Connection

# Only these hosts may be reached without TLS and signing: nothing leaves the machine.
LOOPBACK_ENDPOINT = re.compile(r"http://(127\.0\.0\.1|localhost|\[::1\])(?::(\d+))?/?")
DOMAIN_ENDPOINT = re.compile(r"(?:https://)?([^/:]+)(?::(\d+))?/?")


def is_loopback(endpoint: str) -> bool:
    """A plain-HTTP node on this machine (the local node), as opposed to a managed domain."""
    return LOOPBACK_ENDPOINT.fullmatch(endpoint) is not None


def opensearch_client(
    endpoint: str,
    *,
    region: str | None = None,
    session: boto3.Session | None = None,
    connection_class: type[Connection] = RequestsHttpConnection,
    timeout: int = 60,
    max_retries: int = 3,
) -> OpenSearch:
    """A client whose transport retries 5xx and timeouts; SigV4 + TLS unless `endpoint` is a loopback URL."""
    options = {
        "connection_class": connection_class,
        "timeout": timeout,
        "max_retries": max_retries,
        "retry_on_status": (500, 502, 503, 504),
        "retry_on_timeout": True,
    }
    loopback = LOOPBACK_ENDPOINT.fullmatch(endpoint)
    if loopback:
        return OpenSearch(hosts=[{"host": loopback[1].strip("[]"), "port": int(loopback[2] or 9200)}], **options)
    match = DOMAIN_ENDPOINT.fullmatch(endpoint)
    if not match:
        raise CloudBackendError(f"opensearch endpoint '{endpoint}' is not an https://host[:port] URL")
    credentials = session.get_credentials() if session is not None else None
    if credentials is None or region is None:
        raise CloudBackendError(f"OpenSearch domain {endpoint} needs AWS credentials: none found")
    return OpenSearch(
        hosts=[{"host": match[1], "port": int(match[2] or 443)}],
        http_auth=AWSV4SignerAuth(credentials, region, "es"),
        use_ssl=True,
        verify_certs=True,
        **options,
    )
