from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="firezone.tasks.heartbeat")
def heartbeat() -> str:
    """A liveness beat: proves beat schedules and the worker executes (seen in the worker log)."""
    now = timezone.now().isoformat()
    logger.info("heartbeat at %s", now)
    return now
