"""Which plan limits an account is over (billing_sync_jobs.md job 5.3), across the actor limits
(`accounts.limits`) and the sites limit (`gateways.limits`)."""

from __future__ import annotations

from accounts.limits import (
    admins_count,
    limit_of,
    monthly_active_users_count,
    service_accounts_count,
    users_count,
)
from accounts.models import Account
from gateways.limits import sites_count


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
        if (limit := limit_of(account, key)) is not None and count(account) > limit
    ]
