"""Actor reads (domain.md §3.5 "Actors"): `actor:manage`, scoped to the subject's account."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Max, QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Actor, ActorGroup
from accounts.selectors._memberships import peek_through_memberships
from firezone.lookup import get_or_not_found


def _scoped(subject: Subject) -> QuerySet[Actor]:
    ensure_permissions(subject, P.ACTOR_MANAGE)
    return Actor.objects.filter(account_id=subject.account_id)


def actor_get(subject: Subject, *, actor_id: Any) -> Actor:
    """One actor of the subject's account, with `last_seen_at` (latest identity activity)."""
    queryset = _scoped(subject).annotate(last_seen_at=Max("identities__last_seen_at"))
    return get_or_not_found(queryset, actor_id, account_id=subject.account_id)


def actor_list(
    subject: Subject,
    *,
    type: str | list[str] | None = None,
    disabled: bool | None = None,
    search: str | None = None,
) -> QuerySet[Actor]:
    """The account's actors by name; filter by type(s), disabled state, or a name fragment."""
    queryset = _scoped(subject).annotate(last_seen_at=Max("identities__last_seen_at"))
    if type is not None:
        queryset = queryset.filter(type__in=[type] if isinstance(type, str) else type)
    if disabled is not None:
        queryset = queryset.filter(disabled_at__isnull=not disabled)
    if search:
        queryset = queryset.filter(name__icontains=search.strip())
    return queryset.order_by("name", "id")


def actor_groups_peek(
    subject: Subject, *, actor_ids: list[Any], limit: int = 3
) -> dict[uuid.UUID, dict[str, Any]]:
    """For each actor id: `{"count": n, "items": [its first `limit` groups by name]}`."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    return peek_through_memberships(
        ActorGroup.objects.filter(account_id=subject.account_id),
        other_side="actor_id",
        ids=actor_ids,
        limit=limit,
    )
