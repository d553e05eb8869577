"""Small JSON objects in the data bucket that several deliveries update: read with their ETag, written only if
unchanged since (S3 conditional writes).

botocore's s3 2006-03-01 model gives PutObject `IfMatch` ("uploads the object only if the ETag ... matches ...
otherwise 412 Precondition Failed") and `IfNoneMatch` ("only if the object key name does not already exist");
both say a conflicting write in flight answers 409 `ConditionalRequestConflict`, after which the caller reads
again and retries. Either answer means "someone else wrote first": the caller re-reads and decides again.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict"}
# S3 answers NoSuchKey for a missing key; with If-Match and no object, 404 as well.
MISSING = {"NoSuchKey", "404"}


def body(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def read(s3: Any, bucket: str, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """(value, ETag), or (None, None) when the object does not exist."""
    try:
        stored = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in MISSING:
            return None, None
        raise
    return json.loads(stored["Body"].read()), stored["ETag"]


def put_if(s3: Any, bucket: str, key: str, value: dict[str, Any], etag: str | None) -> str | None:
    """Write `value` if the object is still at `etag` (absent when None); its new ETag, or None if it was not."""
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    try:
        response = s3.put_object(Bucket=bucket, Key=key, Body=body(value), ContentType="application/json", **condition)
    except ClientError as error:
        if error.response["Error"]["Code"] in LOST_RACE | MISSING:
            return None
        raise
    return response["ETag"]
