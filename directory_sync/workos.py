"""The WorkOS client (billing_sync_jobs.md §2.11): the official SDK against `WORKOS_BASE_URL`
with `WORKOS_API_KEY` (a local fake in tests). An empty key means WorkOS is off."""

from __future__ import annotations

from django.conf import settings
from workos import WorkOSClient

from firezone.errors import Refused

MSG_WORKOS_OFF = "Directory sync through WorkOS is not configured for this Firezone deployment."


class WorkOSNotConfigured(Refused):
    """Directory sync through WorkOS is not configured for this Firezone deployment."""


def workos_enabled() -> bool:
    return bool(settings.WORKOS_API_KEY)


def workos_client() -> WorkOSClient:
    """A client for one sync or one setup; `WorkOSNotConfigured` without an API key."""
    if not workos_enabled():
        raise WorkOSNotConfigured(MSG_WORKOS_OFF)
    return WorkOSClient(
        api_key=settings.WORKOS_API_KEY,
        client_id=settings.WORKOS_CLIENT_ID or None,
        base_url=settings.WORKOS_BASE_URL,
        request_timeout=int(getattr(settings, "WORKOS_REQUEST_TIMEOUT", 30)),
        max_retries=int(getattr(settings, "WORKOS_MAX_RETRIES", 3)),
    )
