"""The "first few members / groups" peek shared by the actor and group lists."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import F, QuerySet


def peek_through_memberships(
    queryset: QuerySet[Any], *, other_side: str, ids: Iterable[Any], limit: int
) -> dict[uuid.UUID, dict[str, Any]]:
    """For each id of `ids` (a membership's `other_side`, "actor_id" or "group_id"):
    `{"count": n, "items": [the first `limit` rows of `queryset` linked to it, by name]}`."""
    keys = [uuid.UUID(str(i)) for i in ids]
    result: dict[uuid.UUID, dict[str, Any]] = {k: {"count": 0, "items": []} for k in keys}
    rows = (
        queryset.filter(**{f"memberships__{other_side}__in": keys})
        .annotate(peek_key=F(f"memberships__{other_side}"))
        .order_by("name", "id")
    )
    for row in rows:
        entry = result[row.peek_key]
        entry["count"] += 1
        if len(entry["items"]) < limit:
            entry["items"].append(row)
    return result
