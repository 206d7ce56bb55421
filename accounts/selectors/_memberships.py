"""The "first few members / groups" peek shared by the actor and group lists."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import F, QuerySet

from firezone.peek import peek


def peek_through_memberships(
    queryset: QuerySet[Any], *, other_side: str, ids: Iterable[Any], limit: int
) -> dict[uuid.UUID, dict[str, Any]]:
    """For each id of `ids` (a membership's `other_side`, "actor_id" or "group_id"):
    `{"count": n, "items": [the first `limit` rows of `queryset` linked to it, by name]}`."""
    return peek(
        ids,
        lambda keys: (
            queryset.filter(**{f"memberships__{other_side}__in": keys})
            .annotate(peek_key=F(f"memberships__{other_side}"))
            .order_by("name", "id")
        ),
        key="peek_key",
        limit=limit,
    )
