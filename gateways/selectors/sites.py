"""Site queries (domain.md §2.10, §3.3): account-wide with `gateway:manage` or `gateway:connect`."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Account
from firezone.errors import NotFound
from firezone.lookup import get_or_not_found
from gateways.models import INTERNET_SITE_NAME, Site


def _scoped(subject: Subject) -> QuerySet[Site]:
    ensure_permissions(subject, one_of=(P.GATEWAY_MANAGE, P.GATEWAY_CONNECT))
    return Site.objects.filter(account_id=subject.account_id)


def site_get(subject: Subject, *, site_id: Any) -> Site:
    return get_or_not_found(_scoped(subject), site_id)


def site_list(subject: Subject, *, include_internet: bool = False) -> QuerySet[Site]:
    """User sites, oldest first; the Internet site only if asked for."""
    queryset = _scoped(subject)
    if not include_internet:
        queryset = queryset.filter(managed_by=Site.ManagedBy.ACCOUNT)
    return queryset.order_by("inserted_at", "id")


def internet_site(account: Account | Any) -> Site:
    """System path: the account's Internet site (NotFound if it was never created)."""
    account_id = account.pk if isinstance(account, Account) else account
    site = Site.objects.filter(
        account_id=account_id, name=INTERNET_SITE_NAME, managed_by=Site.ManagedBy.SYSTEM
    ).first()
    if site is None:
        raise NotFound()
    return site
