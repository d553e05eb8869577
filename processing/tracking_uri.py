"""Managed MLflow: the tracking URI is the SageMaker tracking server ARN, resolved by the sagemaker-mlflow plugin.

The plugin registers the `arn` scheme with MLflow and signs every request with SigV4, so the same run code
writes to a local sqlite store or to the managed server; this module only checks the ARN before a run starts.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points

from processing.backends.aws_session import REGION
from processing.backends.errors import CloudBackendError

TRACKING_SERVER_ARN = re.compile(
    rf"^arn:aws[a-z-]*:sagemaker:(?P<region>{REGION}):(?P<account>\d{{12}}):"
    r"mlflow-tracking-server/(?P<name>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,255})$"
)
EXPECTED_FORMAT = "arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>"


def is_managed_tracking_uri(uri: str) -> bool:
    """True when the URI names a SageMaker resource rather than a local or HTTP store."""
    return uri.startswith("arn:")


def managed_tracking_uri(arn: str, *, region: str) -> str:
    """Validate a tracking server ARN against the run's region and the installed plugin; return it as the URI."""
    match = TRACKING_SERVER_ARN.match(arn)
    if not match:
        raise CloudBackendError(
            f"tracking_uri '{arn}' is not a SageMaker MLflow tracking server ARN ({EXPECTED_FORMAT})"
        )
    if match["region"] != region:
        raise CloudBackendError(
            f"tracking_uri: tracking server '{match['name']}' is in {match['region']}"
            f" but the configured region is {region}"
        )
    if not entry_points(group="mlflow.tracking_store", name="arn"):
        raise CloudBackendError("tracking_uri is a SageMaker ARN but the sagemaker-mlflow plugin is not installed")
    return arn
