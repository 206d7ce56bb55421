"""Reads of resources (domain.md §2.12, §3.3 "Resources", §3.5).

Scope: `Resource:manage` sees every resource of the account; `view_available_resources` only the
resources a non-disabled policy grants to one of the actor's groups.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.features import feature_enabled
from accounts.models import ActorGroup
from firezone.errors import NotFound
from gateways.models import Site
from resources.models import Policy, Resource, ResourceConnection
from resources.selectors import get_by_id_or_persistent_id

ORDERING = ("name", "inserted_at", "id")  # domain.md §0.7


def _granting_policies(subject: Subject) -> QuerySet[Policy]:
    """Non-disabled policies of the groups the subject's actor is a member of."""
    return Policy.objects.filter(
        account_id=subject.account_id,
        disabled_at__isnull=True,
        actor_group__memberships__actor_id=subject.actor_id,
    )


def _scope(subject: Subject) -> QuerySet[Resource]:
    resources = Resource.objects.filter(account_id=subject.account_id)
    if subject.has(P.RESOURCE_MANAGE):
        return resources
    if subject.has(P.RESOURCE_VIEW_AVAILABLE):
        return resources.filter(id__in=_granting_policies(subject).values("resource_id"))
    return resources.none()


def _ensure_view(subject: Subject) -> None:
    ensure_permissions(subject, one_of=(P.RESOURCE_MANAGE, P.RESOURCE_VIEW_AVAILABLE))


def resource_get_by_id_or_persistent_id(subject: Subject, id_: Any) -> Resource:
    """By id, or by the stable `persistent_id` (old links)."""
    _ensure_view(subject)
    return get_by_id_or_persistent_id(_scope(subject), id_)


def resource_list(
    subject: Subject,
    *,
    search: str | None = None,
    type: str | None = None,
    site_id: Any = None,
    exclude_internet: bool = False,
) -> QuerySet[Resource]:
    """All resources of the account, ordered by name. The Internet resource is hidden when the
    account lacks the `internet_resource` feature (or when `exclude_internet`)."""
    ensure_permissions(subject, P.RESOURCE_MANAGE)
    resources = _scope(subject)
    if exclude_internet or not feature_enabled(subject.account, "internet_resource"):
        resources = resources.exclude(type=Resource.Type.INTERNET)
    if search and search.strip():
        resources = resource_search(resources, search)
    if type:
        resources = resources.filter(type=type)
    if site_id is not None:
        resources = resources.filter(connections__gateway_group_id=site_id)
    return resources.order_by(*ORDERING)


def resource_search(resources: QuerySet[Resource], term: str) -> QuerySet[Resource]:
    """Narrow `resources` to those whose name or address contains `term` (case-insensitive)."""
    term = term.strip()
    return resources.filter(Q(name__icontains=term) | Q(address__icontains=term))


def with_sites(resources: QuerySet[Resource]) -> QuerySet[Resource]:
    """Prefetch each resource's connections with their sites, by site name (one query)."""
    return resources.prefetch_related(
        Prefetch(
            "connections",
            queryset=ResourceConnection.objects.select_related("gateway_group").order_by(
                "gateway_group__name", "id"
            ),
        )
    )


def resource_sites(subject: Subject, resource: Resource | Any) -> list[Site]:
    """The sites the resource is connected to, by name."""
    ensure_permissions(subject, P.RESOURCE_MANAGE)
    resource_id = resource.pk if isinstance(resource, Resource) else resource
    return list(
        Site.objects.filter(
            account_id=subject.account_id, resource_connections__resource_id=resource_id
        ).order_by("name", "id")
    )


def internet_resource_get(subject: Subject) -> Resource:
    ensure_permissions(subject, P.RESOURCE_MANAGE)
    found = _scope(subject).filter(type=Resource.Type.INTERNET).first()
    if found is None:
        raise NotFound()
    return found


@dataclass(frozen=True)
class Peek:
    """The first few items of a list and the list's full length."""

    count: int
    items: list[Any] = field(default_factory=list)


def resource_peek_actor_groups(
    subject: Subject, resources: list[Resource] | list[Any], *, limit: int = 3
) -> dict[Any, Peek]:
    """For each resource (of the account), the groups its policies grant it to: the first
    `limit` by name and how many there are."""
    ensure_permissions(subject, P.RESOURCE_MANAGE)
    ids = [r.pk if isinstance(r, Resource) else uuid.UUID(str(r)) for r in resources]
    groups: dict[Any, list[ActorGroup]] = {rid: [] for rid in ids}
    policies = (
        Policy.objects.filter(account_id=subject.account_id, resource_id__in=ids)
        .select_related("actor_group")
        .order_by("actor_group__name", "actor_group_id")
    )
    for policy in policies:
        bucket = groups.setdefault(policy.resource_id, [])
        if all(g.pk != policy.actor_group_id for g in bucket):
            bucket.append(policy.actor_group)
    return {rid: Peek(count=len(items), items=items[:limit]) for rid, items in groups.items()}
