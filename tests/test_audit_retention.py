"""The audit log's retention (issue 18 item 4): the daily job deletes change-log rows older than
AUDIT_LOG_RETENTION_DAYS, in batches, and only those; a second run deletes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from firezone import audit_retention, tasks
from firezone.celery import app
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db


def _rows(count: int, *, days_ago: float) -> set[int]:
    at = timezone.now() - timedelta(days=days_ago)
    created = ChangeLog.objects.bulk_create(
        ChangeLog(account_id=None, table="relay_groups", op="insert", data={"id": str(i)})
        for i in range(count)
    )
    lsns = {row.lsn for row in created}
    ChangeLog.objects.filter(lsn__in=lsns).update(inserted_at=at)
    return lsns


def test_the_job_deletes_only_rows_past_the_retention_in_batches(settings) -> None:
    settings.AUDIT_LOG_RETENTION_DAYS = 30
    old = _rows(25, days_ago=31)
    kept = _rows(5, days_ago=29) | _rows(3, days_ago=0)
    with CaptureQueriesContext(connection) as queries:
        assert audit_retention.change_log_delete_expired(batch_size=10) == 25
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("\nDELETE")]
    assert len(deletes) == 3  # 10 + 10 + 5
    remaining = set(ChangeLog.objects.values_list("lsn", flat=True))
    assert not (remaining & old) and kept <= remaining
    # Idempotent: nothing left to delete.
    assert audit_retention.change_log_delete_expired(batch_size=10) == 0
    assert set(ChangeLog.objects.values_list("lsn", flat=True)) == remaining


def test_the_celery_task_runs_it_once_at_a_time(settings) -> None:
    settings.AUDIT_LOG_RETENTION_DAYS = 365
    _rows(2, days_ago=400)
    recent = _rows(2, days_ago=364)
    assert tasks.change_log_delete_expired() == 2
    assert tasks.change_log_delete_expired() == 0
    assert set(ChangeLog.objects.values_list("lsn", flat=True)) == recent
    entry = app.conf.beat_schedule["change-log-delete-expired"]
    assert entry["task"] == "firezone.tasks.change_log_delete_expired"


def test_kept_since_follows_the_setting_with_a_floor_of_a_day(settings) -> None:
    now = timezone.now()
    settings.AUDIT_LOG_RETENTION_DAYS = 90
    assert audit_retention.kept_since(now=now) == now - timedelta(days=90)
    settings.AUDIT_LOG_RETENTION_DAYS = 0  # never the catch-up's window
    assert audit_retention.kept_since(now=now) == now - timedelta(days=1)
