"""Periodic work of the gateways app (beat schedule in firezone/celery.py)."""

from __future__ import annotations

from celery import shared_task

from gateways import presence


@shared_task(name="gateways.tasks.presence_sweep", ignore_result=True)
def presence_sweep() -> int:
    """Drop presence entries of connections whose process stopped refreshing them (crash,
    partition) and publish their leaves. Idempotent; concurrent runs never double-report."""
    return presence.sweep_sync()
