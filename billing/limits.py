"""Which plan limits an account is over (billing_sync_jobs.md §1.13) and how much of each is
used (the REST API's `/account`, portal.md §5.2 row 1), across the actor limits
(`accounts.limits`) and the sites limit (`gateways.limits`)."""

from __future__ import annotations

from accounts.auth import Subject
from accounts.limits import (
    admins_count,
    limit_of,
    monthly_active_users_count,
    service_accounts_count,
    users_count,
)
from accounts.models import Account
from accounts.selectors.accounts import account_get
from gateways.limits import sites_count

# (name in `/account`'s `limits`, key of `Account.limits`, count), in the original's order.
USAGE = (
    ("users", "users_count", users_count),
    ("monthly_active_users", "monthly_active_users_count", monthly_active_users_count),
    ("service_accounts", "service_accounts_count", service_accounts_count),
    ("account_admin_users", "account_admin_users_count", admins_count),
    ("gateway_groups", "gateway_groups_count", sites_count),
)


def exceeded_limits(account: Account) -> list[str]:
    """Names of the limits the account is over, in the order of the warning text (§1.13)."""
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


def limits_usage(subject: Subject) -> dict[str, dict[str, int]]:
    """The subject's account's configured limits: `{used, available, total}` each
    (available = max(0, total - used)); unlimited ones are left out."""
    account = account_get(subject)
    usage = {}
    for name, key, count in USAGE:
        total = limit_of(account, key)
        if total is None:
            continue
        used = count(account)
        usage[name] = {"used": used, "available": max(0, total - used), "total": total}
    return usage
