"""Plan limits (domain.md §2.15): counts and "may create" checks used by the services.

A limit of `None` (or a missing key) means unlimited. Every check requires an active account.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import Account, Actor
from gateways.models import Site


def _limit(account: Account, key: str) -> int | None:
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


def sites_count(account: Account) -> int:
    return Site.objects.filter(account=account, managed_by=Site.ManagedBy.ACCOUNT).count()


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
    if (limit := _limit(account, "monthly_active_users_count")) is not None:
        return monthly_active_users_count(account) < limit
    if (limit := _limit(account, "users_count")) is not None:
        return users_count(account) < limit
    return True


def can_create_admins(account: Account) -> bool:
    if not account.is_active:
        return False
    limit = _limit(account, "account_admin_users_count")
    return limit is None or admins_count(account) < limit


def can_create_service_accounts(account: Account) -> bool:
    if not account.is_active:
        return False
    limit = _limit(account, "service_accounts_count")
    return limit is None or service_accounts_count(account) < limit


def can_create_sites(account: Account) -> bool:
    if not account.is_active:
        return False
    limit = _limit(account, "gateway_groups_count")
    return limit is None or sites_count(account) < limit


def exceeded_limits(account: Account) -> list[str]:
    """Names of the limits the account is over, in the order of the warning text (job 5.3)."""
    checks = [
        ("users", "users_count", users_count),
        ("monthly active users", "monthly_active_users_count", monthly_active_users_count),
        ("service accounts", "service_accounts_count", service_accounts_count),
        ("sites", "gateway_groups_count", sites_count),
        ("account admins", "account_admin_users_count", admins_count),
    ]
    return [
        label
        for label, key, count in checks
        if (limit := _limit(account, key)) is not None and count(account) > limit
    ]
