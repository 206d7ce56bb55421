"""Site queries (domain.md §2.10, §3.3): account-wide with `gateway:manage` or `gateway:connect`."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Account
from firezone.errors import NotFound
from firezone.lookup import get_or_not_found
from gateways.models import INTERNET_SITE_NAME, Gateway, Site
from resources.models import ResourceConnection


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


def site_list_with_peeks(
    subject: Subject, *, online_gateway_ids: Collection[str], resources_limit: int = 5
) -> QuerySet[Site]:
    """User sites for the Sites table, each with `resources_count`, `resource_peek` (the first
    `resources_limit` connections by resource name, with their resources) and
    `online_gateways` (by name, among `online_gateway_ids`). A page costs the same number of
    queries whatever its size: one prefetch query per peek."""

    connections = ResourceConnection.objects.filter(account_id=subject.account_id)
    resources_count = Subquery(
        connections.filter(gateway_group_id=OuterRef("pk"))
        .order_by()
        .values("gateway_group_id")
        .annotate(n=Count("id"))
        .values("n"),
        output_field=IntegerField(),
    )
    peek = connections.select_related("resource").order_by("resource__name", "resource_id")
    online = Gateway.objects.filter(account_id=subject.account_id, id__in=list(online_gateway_ids))
    return (
        site_list(subject)
        .annotate(resources_count=Coalesce(resources_count, Value(0)))
        .prefetch_related(
            Prefetch(
                "resource_connections", queryset=peek[:resources_limit], to_attr="resource_peek"
            ),
            Prefetch("gateways", queryset=online.order_by("name", "id"), to_attr="online_gateways"),
        )
    )


def internet_site_find(subject: Subject) -> Site | None:
    """The account's Internet site, or None (accounts created outside sign-up may lack it)."""
    system = Site.ManagedBy.SYSTEM
    return _scoped(subject).filter(name=INTERNET_SITE_NAME, managed_by=system).first()
