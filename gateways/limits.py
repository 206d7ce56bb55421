"""The sites plan limit (domain.md §2.15), next to the actor limits of `accounts.limits`."""

from __future__ import annotations

from accounts.limits import limit_of
from accounts.models import Account
from gateways.models import Site


def sites_count(account: Account) -> int:
    return Site.objects.filter(account=account, managed_by=Site.ManagedBy.ACCOUNT).count()


def can_create_sites(account: Account) -> bool:
    if not account.is_active:
        return False
    limit = limit_of(account, "gateway_groups_count")
    return limit is None or sites_count(account) < limit
