"""Reads of the account notifications (billing_sync_jobs.md §4.2, §4.3): who gets the account's
notification e-mails and the state of the outdated-gateway one. System reads (background jobs),
so there is no subject."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Account, Actor, AuthIdentity, AuthProvider


def admin_email_addresses(account_id: Any) -> list[str]:
    """The addresses of the account's enabled admins (an identity's IdP e-mail, its e-mail, or
    the identifier of an e-mail provider identity), de-duplicated case-insensitively, in a
    stable order."""
    identities = (
        AuthIdentity.objects.filter(
            account_id=account_id,
            actor__type=Actor.Type.ACCOUNT_ADMIN_USER,
            actor__disabled_at__isnull=True,
        )
        .select_related("provider")
        .order_by("inserted_at", "id")
    )
    seen: set[str] = set()
    addresses: list[str] = []
    for identity in identities:
        userinfo = (identity.provider_state or {}).get("userinfo") or {}
        address = (userinfo.get("email") if isinstance(userinfo, dict) else None) or identity.email
        if not address and identity.provider.adapter == AuthProvider.Adapter.EMAIL:
            address = identity.provider_identifier
        if isinstance(address, str) and "@" in address and address.lower() not in seen:
            seen.add(address.lower())
            addresses.append(address)
    return addresses


def outdated_gateway_setting(account: Account) -> dict[str, Any]:
    """`config.notifications.outdated_gateway` (a copy; {} when absent or malformed)."""
    notifications = (account.config or {}).get("notifications")
    setting = notifications.get("outdated_gateway") if isinstance(notifications, dict) else None
    return dict(setting) if isinstance(setting, dict) else {}


def outdated_gateway_notifications_on(account: Account) -> bool:
    """On unless explicitly turned off (new accounts get `enabled: true`, §4.3)."""
    return outdated_gateway_setting(account).get("enabled", True) is not False


def outdated_gateway_last_notified(account: Account) -> datetime | None:
    value = outdated_gateway_setting(account).get("last_notified")
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed
