"""Retention of processed Stripe events (billing_sync_jobs.md §1.7, §3.2 row 17): the idempotency
rows are only needed while Stripe may still redeliver or reorder an event."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from billing.models import ProcessedStripeEvent

RETENTION = timedelta(days=30)


def processed_events_delete_old(*, older_than: timedelta = RETENTION) -> int:
    """Delete the events processed more than `older_than` ago; returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = ProcessedStripeEvent.objects.filter(processed_at__lt=cutoff).delete()
    return deleted
