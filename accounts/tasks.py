"""Periodic work of the accounts app (beat schedule in firezone/celery.py)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from accounts.services.browser_sessions import browser_sessions_refresh as refresh_due_sessions
from accounts.services.tokens_admin import tokens_delete_expired as delete_expired_batch
from firezone.jobs import single_run

BATCH = 1000


@shared_task(name="accounts.tasks.tokens_delete_expired", ignore_result=True)
def tokens_delete_expired() -> int:
    """Every 5 minutes (protocol.md §6.1): delete expired tokens through `changes.delete`, so
    every socket authenticated with one is closed and the flows created with it are deleted.
    One transaction per batch; returns how many tokens were deleted."""
    total = 0
    while (deleted := delete_expired_batch(limit=BATCH)) > 0:
        total += deleted
        if deleted < BATCH:
            break
    return total


@shared_task(name="accounts.tasks.browser_sessions_refresh", ignore_result=True)
def browser_sessions_refresh() -> dict[str, Any] | None:
    """Every minute (billing_sync_jobs.md §2.14; the original ran every 5 minutes over the same
    15-minute window: more chances when the IdP is briefly down): refresh the IdP grants of
    OIDC browser sessions about to expire, extending them, or signing them out when the IdP
    refuses (accounts.services.browser_sessions). One run at a time; None when skipped."""
    with single_run("accounts.browser_sessions_refresh") as acquired:
        return refresh_due_sessions().as_dict() if acquired else None
