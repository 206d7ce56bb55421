"""Periodic work of the billing app (beat schedule in firezone/celery.py,
billing_sync_jobs.md §3.2). Each job runs once at a time across workers (`single_run`)."""

from __future__ import annotations

from celery import shared_task

from billing.services.limits_check import accounts_limits_check
from billing.services.retention import processed_events_delete_old
from billing.stripe import billing_enabled
from firezone.jobs import single_run


@shared_task(name="billing.tasks.check_account_limits", ignore_result=True)
def check_account_limits() -> int | None:
    """Every 5 minutes, only with billing on (§1.13): set or clear the limits warning of every
    active provisioned account. None when skipped (billing off, or another run going on)."""
    if not billing_enabled():
        return None
    with single_run("billing.check_account_limits") as acquired:
        return accounts_limits_check() if acquired else None


@shared_task(name="billing.tasks.cleanup_processed_stripe_events", ignore_result=True)
def cleanup_processed_stripe_events() -> int | None:
    """Daily (§1.7 retention): delete processed Stripe events older than 30 days."""
    with single_run("billing.cleanup_processed_stripe_events") as acquired:
        return processed_events_delete_old() if acquired else None
