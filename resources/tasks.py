"""Periodic work of the resources app (beat schedule in firezone/celery.py)."""

from __future__ import annotations

from celery import shared_task

from resources.services import flows


@shared_task(name="resources.tasks.flows_delete_expired", ignore_result=True)
def flows_delete_expired() -> int:
    """Every minute (protocol.md §5.7): delete the flows whose authorisation ended; each
    deletion reaches its gateway's socket (§5.5, usually `reject_access`)."""
    return flows.flows_delete_expired()
