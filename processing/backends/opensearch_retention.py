"""Version expiry: at publish, this index name's versions older than the retention are deleted, except any the
alias points to (however old: a deployment with no new run keeps serving its last version).

Not an Index State Management policy: ISM transitions on an index's age, document count, size or a cron
schedule only, with no condition on whether an alias points to it, so a `min_index_age` delete would also take
the live version once no run has published for longer than the retention (docs/DESIGN.md, "Version expiry").
"""

from __future__ import annotations

import logging
import re

from opensearchpy import NotFoundError, OpenSearch

logger = logging.getLogger(__name__)


def expired_versions(client: OpenSearch, index: str, *, keep: str, max_age_s: float, now_s: float) -> list[str]:
    """Versions of `index` (`<index>-<version>`, and the earlier per-execution `<index>-<id>-v<n>`) created more
    than `max_age_s` ago, other than `keep` and any the alias `index` points to."""
    # Versions are `<index>-<version>`; before versions, each execution ingested `<index>-<12-character
    # SageMaker execution id>-v<n>`, which the same expiry sweeps away.
    pattern = re.compile(rf"^{re.escape(index)}-(?:[a-z0-9]{{1,64}}|[a-z0-9]{{12}}-v\d+)$")
    try:
        settings = client.indices.get_settings(index=f"{index}-*", name="index.creation_date")
    except NotFoundError:
        return []
    try:
        aliased = set(client.indices.get_alias(name=index))
    except NotFoundError:
        aliased = set()
    expired = []
    for name, details in sorted(settings.items()):
        created_s = int(details["settings"]["index"]["creation_date"]) / 1000
        if pattern.match(name) and name != keep and name not in aliased and now_s - created_s > max_age_s:
            expired.append(name)
    return expired


def delete_expired(client: OpenSearch, index: str, *, keep: str, retention_hours: float, now_s: float) -> None:
    """Delete the expired versions; a failure is logged, never failing the publish that already succeeded."""
    try:
        expired = expired_versions(client, index, keep=keep, max_age_s=retention_hours * 3600, now_s=now_s)
        if expired:
            client.indices.delete(index=",".join(expired))
            logger.info("%s: deleted versions older than %s h: %s", index, retention_hours, expired)
    except Exception:
        logger.exception("published %s but could not delete expired versions of %s", keep, index)
