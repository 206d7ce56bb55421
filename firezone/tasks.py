from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from firezone.audit_retention import change_log_delete_expired as delete_expired_change_log
from firezone.component_versions import component_versions_refresh as refresh_versions
from firezone.jobs import single_run

logger = logging.getLogger(__name__)


@shared_task(name="firezone.tasks.heartbeat")
def heartbeat() -> str:
    """A liveness beat: proves beat schedules and the worker executes (seen in the worker log)."""
    now = timezone.now().isoformat()
    logger.info("heartbeat at %s", now)
    return now


@shared_task(name="firezone.tasks.component_versions_refresh", ignore_result=True)
def component_versions_refresh() -> dict[str, Any] | None:
    """Every minute (billing_sync_jobs.md §3.2 row 14): read the releases JSON and store the
    latest component versions; a failure keeps the last known ones. One run at a time; None when
    skipped."""
    with single_run("firezone.component_versions_refresh") as acquired:
        return refresh_versions().as_dict() if acquired else None


@shared_task(name="firezone.tasks.change_log_delete_expired", ignore_result=True)
def change_log_delete_expired() -> int | None:
    """Daily (issue 18): delete change-log rows older than AUDIT_LOG_RETENTION_DAYS, in
    batches. One run at a time; None when skipped."""
    with single_run("firezone.change_log_delete_expired") as acquired:
        return delete_expired_change_log() if acquired else None
