"""Periodic work of the accounts app (beat schedule in firezone/celery.py)."""

from __future__ import annotations

from celery import shared_task

from accounts.services.tokens_admin import tokens_delete_expired as delete_expired_batch

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
