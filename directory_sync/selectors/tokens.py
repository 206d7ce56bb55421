"""Which providers' access tokens are due for a refresh (billing_sync_jobs.md §2.13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import AuthProvider

# The adapters whose sync runs on the connecting admin's OAuth token (JumpCloud has none).
REFRESHED_ADAPTERS = ("google_workspace", "microsoft_entra", "okta")
# Tokens expiring within this are refreshed.
REFRESH_AHEAD = timedelta(minutes=30)


def state_expires_at(state: object) -> datetime | None:
    """`adapter_state.expires_at` as an aware datetime (naive is UTC); None when missing or
    unreadable."""
    value = state.get("expires_at") if isinstance(state, dict) else None
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _candidates(adapters: tuple[str, ...]) -> QuerySet[AuthProvider]:
    return (
        AuthProvider.objects.filter(
            disabled_at__isnull=True,
            adapter__in=adapters,
            provisioner=AuthProvider.Provisioner.CUSTOM,
            adapter_state__has_key="refresh_token",
        )
        .exclude(adapter_state__refresh_token=None)
        .order_by("inserted_at", "id")
    )


def providers_due_token_refresh(
    *, now: datetime | None = None, adapters: tuple[str, ...] = REFRESHED_ADAPTERS
) -> list[AuthProvider]:
    """Enabled, custom-provisioned providers of `adapters` (deleted ones are gone: hard delete)
    that hold a refresh token and whose access token expires within 30 minutes. A state without
    a readable `expires_at` is not selected (the original's SQL comparison with NULL)."""
    limit = (now or timezone.now()) + REFRESH_AHEAD
    return [
        provider
        for provider in _candidates(adapters)
        if (expires_at := state_expires_at(provider.adapter_state)) is not None
        and expires_at < limit
    ]
