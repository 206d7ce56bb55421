"""List pages of the REST API (portal.md §5.1): `limit` (default 50, clamped to 1..100) and an
opaque `page_cursor`; metadata `{count, limit, next_page, prev_page}`.

The keyset is the live tables' (`firezone.web.tables.keyset_page`): a sort key plus the primary
key, so a page costs one count and one rows query (plus the queryset's prefetches) wherever it
is in the list. Each list view names its key (`ordering`); the cursor says after or before which
row the page is, so `prev_page` walks back.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Expression, QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from firezone.api.exceptions import InvalidCursor
from firezone.web.tables import keyset_page, read_cursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# A list view's `ordering`: the sort key and its direction ("asc" or "desc").
Ordering = tuple[str | Expression, str]


def clamp_limit(raw: str | None) -> int:
    """`limit` as given, clamped to 1..100; absent or not an integer: the default."""
    try:
        value = int(raw) if raw is not None else DEFAULT_LIMIT
    except ValueError:
        value = DEFAULT_LIMIT
    return max(1, min(MAX_LIMIT, value))


class KeysetPagination(BasePagination):
    """Used by `ApiView.page`; the view's `ordering` is `(key, "asc" | "desc")`, the key a field
    name or a never-NULL expression. (/openapi: `firezone.api.schema.PAGE_PARAMETERS`.)"""

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list:
        key, direction = getattr(view, "ordering", ("inserted_at", "asc"))
        self.limit = clamp_limit(request.query_params.get("limit"))
        try:
            cursor = read_cursor(request.query_params.get("page_cursor"))
            self.count = queryset.count()
            page = keyset_page(
                queryset, key, ascending=direction == "asc", cursor=cursor, size=self.limit
            )
        except ValueError:
            raise InvalidCursor() from None
        self.next_page, self.prev_page = page.next_cursor, page.prev_cursor
        return page.rows

    def metadata(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "limit": self.limit,
            "next_page": self.next_page,
            "prev_page": self.prev_page,
        }

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"data": data, "metadata": self.metadata()})
