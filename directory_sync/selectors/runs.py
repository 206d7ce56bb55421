"""Which providers are due for a directory sync (billing_sync_jobs.md §2.2 step 1).

A provider is due when it is enabled, provisioned by sync (`provisioner = custom`), its sync is
not disabled (an IdP 401 disables it until the admin reconnects) and its back-off has passed:

    last_sync_attempt_at IS NULL
    OR last_sync_attempt_at + LEAST(10 min * (last_syncs_failed^2 + 1), 4 h) < now()

The original counts the back-off from `last_synced_at`, which every counted failure nulls, so a
failing provider was retried on every tick (quirk §7.5). Here it counts from
`last_sync_attempt_at`, the end of the last run whatever its outcome, so the quadratic back-off
applies: 10 min after a success or a log-only failure, then 20 min, 50 min, 100 min, 170 min and
4 h from the fourth counted failure in a row. The account's status is not checked (§2.2).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from accounts.models import AuthProvider

BACKOFF_STEP = timedelta(minutes=10)
BACKOFF_MAX = timedelta(hours=4)


def sync_backoff(failures: int) -> timedelta:
    """The wait after a run ending with `failures` counted failures in a row (0 after a success)."""
    return min(BACKOFF_STEP * (failures**2 + 1), BACKOFF_MAX)


def _due_at() -> ExpressionWrapper:
    failures = Coalesce(F("last_syncs_failed"), Value(0))
    wait = Least(
        ExpressionWrapper(
            Value(BACKOFF_STEP, output_field=DurationField()) * (failures * failures + Value(1)),
            output_field=DurationField(),
        ),
        Value(BACKOFF_MAX, output_field=DurationField()),
        output_field=DurationField(),
    )
    return ExpressionWrapper(F("last_sync_attempt_at") + wait, output_field=DateTimeField())


def _syncable(**filters: Any) -> QuerySet[AuthProvider]:
    return AuthProvider.objects.filter(
        disabled_at__isnull=True,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        sync_disabled_at__isnull=True,
        **filters,
    )


def providers_due_for_sync(*, adapter: str, now: datetime | None = None) -> QuerySet[AuthProvider]:
    """The providers of `adapter` whose sync is due (the periodic task enqueues one run each)."""
    now = now or timezone.now()
    return (
        _syncable(adapter=adapter)
        .annotate(sync_due_at=_due_at())
        .filter(Q(last_sync_attempt_at__isnull=True) | Q(sync_due_at__lt=now))
        .order_by("last_sync_attempt_at", "id")
    )


def provider_get_syncable(
    *, provider_id: Any, due_only: bool, now: datetime | None = None
) -> AuthProvider | None:
    """The provider if it may be synced now: syncable (enabled, custom, sync not disabled) and,
    with `due_only`, past its back-off. "Sync now" skips the back-off, never the rest."""
    now = now or timezone.now()
    providers = _syncable(pk=provider_id).select_related("account")
    if due_only:
        providers = providers.annotate(sync_due_at=_due_at()).filter(
            Q(last_sync_attempt_at__isnull=True) | Q(sync_due_at__lt=now)
        )
    return providers.first()
