"""The audit log's retention (issue 18 item 4): change-log rows older than
`AUDIT_LOG_RETENTION_DAYS` (default 365) are deleted by a daily job, in batches.

Each batch is one short statement (its own transaction): the oldest `BATCH_SIZE` rows by `lsn`
that are past the cut-off. Old rows sit at the start of the primary key, so a batch reads little
more than it deletes, and a long backlog never holds one long transaction or lock. Deleting is
idempotent: a second run finds nothing. The cut-off is never nearer than one day: the catch-up
(firezone/catchup.py) reads the log's last seconds.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from firezone.models import ChangeLog

logger = logging.getLogger(__name__)

BATCH_SIZE = 10_000
MIN_RETENTION_DAYS = 1

_DELETE_BATCH_SQL = """
DELETE FROM {table} WHERE lsn IN (
    SELECT lsn FROM {table} WHERE inserted_at < %s ORDER BY lsn LIMIT %s
)
"""


def retention_days() -> int:
    return max(int(settings.AUDIT_LOG_RETENTION_DAYS), MIN_RETENTION_DAYS)


def kept_since(*, now: datetime | None = None) -> datetime:
    """The oldest time the audit log still covers: rows inserted before it are (or are about to
    be) deleted. For the page's "kept since <date>"."""
    return (now or timezone.now()) - timedelta(days=retention_days())


def change_log_delete_expired(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Delete the change-log rows older than the retention, `batch_size` per statement, each in
    its own transaction; returns how many were deleted."""
    cutoff = kept_since(now=now)
    sql = _DELETE_BATCH_SQL.format(table=connection.ops.quote_name(ChangeLog._meta.db_table))
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [cutoff, batch_size])
            count = cursor.rowcount
        deleted += count
        if count < batch_size:
            break
    if deleted:
        logger.info("audit log: deleted %d change-log rows older than %s", deleted, cutoff)
    return deleted
