"""The one error type cloud backends raise for configuration, credential and service failures.

Callers (the CLI, the stage runner) catch it to print one clear line and exit non-zero instead of a
stack trace from deep inside boto3 or opensearch-py.
"""

from __future__ import annotations


class CloudBackendError(RuntimeError):
    """A cloud backend cannot start or a service call failed for good; the message names what and where."""
