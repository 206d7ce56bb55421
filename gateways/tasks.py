"""Periodic work of the gateways app (beat schedule in firezone/celery.py)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from firezone.jobs import single_run
from gateways import presence
from gateways.services.outdated_gateways import outdated_gateways_notify as notify_outdated


@shared_task(name="gateways.tasks.presence_sweep", ignore_result=True)
def presence_sweep() -> int:
    """Drop presence entries of connections whose process stopped refreshing them (crash,
    partition) and publish their leaves. Idempotent; concurrent runs never double-report."""
    return presence.sweep_sync()


@shared_task(name="gateways.tasks.outdated_gateways_notify", ignore_result=True)
def outdated_gateways_notify() -> dict[str, Any] | None:
    """Every 5 minutes (billing_sync_jobs.md §3.2 row 5, §4.4): e-mail the admins of accounts
    with outdated online gateways (Sundays only in production; once per gateway and version).
    One run at a time; None when skipped."""
    with single_run("gateways.outdated_gateways_notify") as acquired:
        return notify_outdated().as_dict() if acquired else None
