"""The "first few of each" peek of the list pages (an actor's groups, a group's actors, an actor's
clients): per key, how many rows it has and the first `limit` of them, in one query."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any


def peek(
    ids: Iterable[Any],
    rows: Callable[[list[uuid.UUID]], Iterable[Any]],
    *,
    key: str,
    limit: int,
) -> dict[uuid.UUID, dict[str, Any]]:
    """For each id of `ids`: `{"count": n, "items": [its first `limit` rows]}`. `rows(keys)` gives
    the rows of all the keys in the wanted order, each naming its key in the attribute `key`."""
    keys = [uuid.UUID(str(i)) for i in ids]
    result: dict[uuid.UUID, dict[str, Any]] = {k: {"count": 0, "items": []} for k in keys}
    for row in rows(keys):
        entry = result[getattr(row, key)]
        entry["count"] += 1
        if len(entry["items"]) < limit:
            entry["items"].append(row)
    return result
