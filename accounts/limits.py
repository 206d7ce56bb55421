"""Plan limits (domain.md §2.15) on actors: counts and "may create" checks used by the services.
The sites limit lives in `gateways.limits`; `billing.limits` reports every exceeded limit.

A limit of `None` (or a missing key) means unlimited. Every check requires an active account.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import Account, Actor


def limit_of(account: Account, key: str) -> int | None:
    value = (account.limits or {}).get(key)
    return value if isinstance(value, int) else None


def _active_actors(account: Account):
    return Actor.objects.filter(account=account, disabled_at__isnull=True)


def users_count(account: Account) -> int:
    return _active_actors(account).filter(type__in=Actor.USER_TYPES).count()


def admins_count(account: Account) -> int:
    return _active_actors(account).filter(type=Actor.Type.ACCOUNT_ADMIN_USER).count()


def service_accounts_count(account: Account) -> int:
    return _active_actors(account).filter(type=Actor.Type.SERVICE_ACCOUNT).count()


def monthly_active_users_count(account: Account) -> int:
    """Users and admins, not disabled, with a client seen within the last month."""
    since = timezone.now() - timedelta(days=30)
    return (
        _active_actors(account)
        .filter(type__in=Actor.USER_TYPES, clients__last_seen_at__gte=since)
        .distinct()
        .count()
    )


def can_create_users(account: Account) -> bool:
    if not account.is_active:
        return False
    if (limit := limit_of(account, "monthly_active_users_count")) is not None:
        return monthly_active_users_count(account) < limit
    if (limit := limit_of(account, "users_count")) is not None:
        return users_count(account) < limit
    return True


def can_create_admins(account: Account) -> bool:
    if not account.is_active:
        return False
    limit = limit_of(account, "account_admin_users_count")
    return limit is None or admins_count(account) < limit


def can_create_service_accounts(account: Account) -> bool:
    if not account.is_active:
        return False
    limit = limit_of(account, "service_accounts_count")
    return limit is None or service_accounts_count(account) < limit
