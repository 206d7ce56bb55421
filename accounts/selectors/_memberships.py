"""The "first few members / groups" peek shared by the actor and group lists."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import ActorGroupMembership


def peek_through_memberships(
    queryset: QuerySet[Any], *, other_side: str, ids: Iterable[Any], limit: int
) -> dict[uuid.UUID, dict[str, Any]]:
    """For each id of `ids` (a membership's `other_side`, "actor_id" or "group_id"):
    `{"count": n, "items": [the first `limit` rows of `queryset` linked to it, by name]}`.

    Two queries whatever the number of ids and memberships: the database counts and picks the
    first `limit` per id (an actor may be in thousands of groups), then the picked rows load."""
    keys = [uuid.UUID(str(i)) for i in ids]
    result: dict[uuid.UUID, dict[str, Any]] = {k: {"count": 0, "items": []} for k in keys}
    if not keys:
        return result
    linked = queryset.filter(**{f"memberships__{other_side}": OuterRef("pk")}).order_by()
    count = linked.values(f"memberships__{other_side}").annotate(n=Count("pk")).values("n")
    first = linked.order_by("name", "id").values("pk")[:limit]
    key_model = ActorGroupMembership._meta.get_field(other_side.removesuffix("_id")).related_model
    assert key_model is not None  # a foreign key's
    rows = (
        key_model._default_manager.filter(pk__in=keys)
        .annotate(
            peek_count=Coalesce(Subquery(count, output_field=IntegerField()), 0),
            peek_ids=ArraySubquery(first),
        )
        .values_list("pk", "peek_count", "peek_ids")
    )
    picked: dict[uuid.UUID, list[uuid.UUID]] = {}
    for key, n, item_ids in rows:
        result[key]["count"] = n
        picked[key] = item_ids
    wanted = {pk for item_ids in picked.values() for pk in item_ids}
    items = {row.pk: row for row in queryset.filter(pk__in=wanted)} if wanted else {}
    for key, item_ids in picked.items():
        result[key]["items"] = [items[pk] for pk in item_ids]
    return result
