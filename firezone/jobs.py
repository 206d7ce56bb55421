"""One run at a time for the periodic jobs that the original ran "globally unique"
(billing_sync_jobs.md §3.1, §3.2 "Uniqueness in Celery").

`single_run(name)` takes a Postgres session-level advisory lock, without waiting, on the
thread's own database connection, and yields whether it got it: a second worker (or a beat tick
arriving while the previous run is still going) skips instead of running twice. The lock lives
as long as the connection, so a worker that dies mid-run releases it with its connection; a
normal run releases it on leaving the block. Keys are in their own namespace (the first int), so
they never meet the transaction-scoped locks of address allocation.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

logger = logging.getLogger(__name__)

# The advisory-lock namespace of periodic jobs: "fzjo" as an int.
NAMESPACE = 0x667A6A6F


def job_key(name: str) -> int:
    """A stable 32-bit signed key for a job name."""
    value = zlib.crc32(name.encode())
    return value - 2**32 if value >= 2**31 else value


@contextmanager
def single_run(name: str) -> Iterator[bool]:
    """`with single_run("billing.check_account_limits") as acquired: if acquired: ...`"""
    key = job_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [NAMESPACE, key])
        acquired = bool(cursor.fetchone()[0])
    if not acquired:
        logger.info("job %s is already running elsewhere: skipped", name)
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [NAMESPACE, key])
