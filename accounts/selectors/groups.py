"""Actor group reads (domain.md §3.5 "Actors"): `actor:manage`, scoped to the account."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Count, QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Actor, ActorGroup
from accounts.selectors._memberships import peek_through_memberships
from firezone.lookup import get_or_not_found


def _scoped(subject: Subject) -> QuerySet[ActorGroup]:
    ensure_permissions(subject, P.ACTOR_MANAGE)
    return ActorGroup.objects.filter(account_id=subject.account_id)


def group_get(subject: Subject, *, group_id: Any) -> ActorGroup:
    return get_or_not_found(
        _scoped(subject).select_related("provider"), group_id, account_id=subject.account_id
    )


def group_list(
    subject: Subject, *, search: str | None = None, provider_id: Any = None
) -> QuerySet[ActorGroup]:
    """The account's groups by name; optionally one provider's. (No member count here: it would
    aggregate every membership of the account before the page is cut; `group_actors_peek`
    counts the page's groups.)"""
    queryset = _scoped(subject).select_related("provider")
    if search:
        queryset = queryset.filter(name__icontains=search.strip())
    if provider_id is not None:
        queryset = queryset.filter(provider_id=provider_id)
    return queryset.order_by("name", "id")


def group_list_for_actor(subject: Subject, *, actor: Actor | Any) -> QuerySet[ActorGroup]:
    """The groups an actor of the account belongs to (`list_groups_for`)."""
    queryset = _scoped(subject)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id)
    return queryset.filter(memberships__actor=actor).order_by("name", "id")


def group_members_list(subject: Subject, *, group: ActorGroup) -> QuerySet[Actor]:
    """The actors of a group of the account (loaded by `group_get`), by name."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    return Actor.objects.filter(
        account_id=subject.account_id, memberships__group_id=group.pk
    ).order_by("name", "id")


def group_member_ids(subject: Subject, *, group: ActorGroup) -> set[uuid.UUID]:
    """The ids of a group's actors (one query, for the "Edit Actors" page)."""
    return set(group_members_list(subject, group=group).values_list("pk", flat=True))


def group_list_editable(subject: Subject) -> QuerySet[ActorGroup]:
    """Static, non-synced groups: the ones users may add actors to."""
    return (
        _scoped(subject)
        .filter(type=ActorGroup.Type.STATIC, provider__isnull=True)
        .order_by("name", "id")
    )


def groups_count_by_provider(subject: Subject) -> dict[Any, int]:
    """Synced groups per provider id (`fetch_groups_count_grouped_by_provider_id`)."""
    rows = (
        _scoped(subject)
        .filter(provider__isnull=False)
        .values("provider_id")
        .annotate(n=Count("id"))
    )
    return {row["provider_id"]: row["n"] for row in rows}


def group_actors_peek(
    subject: Subject, *, group_ids: list[Any], limit: int = 3
) -> dict[uuid.UUID, dict[str, Any]]:
    """For each group id: `{"count": n, "items": [its first `limit` actors by name]}`."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    return peek_through_memberships(
        Actor.objects.filter(account_id=subject.account_id),
        other_side="group_id",
        ids=group_ids,
        limit=limit,
    )
