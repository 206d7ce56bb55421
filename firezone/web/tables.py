"""Live tables (portal.md §1.4): filters, ordering and keyset pagination whose state lives in the
query string, prefixed by the table id so several tables share a page.

    {id}_cursor=<opaque>                     keyset position (after/before a row)
    {id}_order_by=<binding>:<asc|desc>:<field>
    {id}_filter[<name>]=<value>              (`{id}_filter[<name>][]` for list filters)

A page costs a fixed number of queries whatever its size: one `count()` and one rows query (plus
the queryset's own `prefetch_related` lookups, one each). Ordering is always completed with the
primary key so the keyset is total; nullable sort keys must be given as expressions that never
yield NULL (e.g. `Coalesce`), because `NULL > x` is never true.

Bad input (an unreadable cursor, an unknown filter, a value outside a filter's choices, an
unknown order) raises `TableReset`; `admin_required` turns it into the documented flash
(portal.md §1.4) and a redirect to the same page without that table's parameters.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Expression, F, Q, QuerySet
from django.http import HttpRequest, QueryDict

PAGE_SIZE = 10

MSG_CURSOR = "The page was reset due to invalid pagination cursor."
MSG_UNDEFINED_FILTER = "The page was reset due to use of undefined pagination filter."
MSG_FILTER_VALUE = "The page was reset due to invalid value of a pagination filter."
MSG_FILTER = "The page was reset due to invalid pagination filter."


class TableReset(Exception):
    """Invalid table parameters: flash `message` and reload `url` (the table's params dropped)."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


# "uuid": a choice among records (providers, sites...): always a select, whatever the count (§1.4).
FilterKind = Literal["search", "select", "radio", "uuid"]


@dataclass(frozen=True)
class Filter:
    """One filter of a table. `apply(queryset, value)` narrows the rows. Choices are fixed
    `(value, label)` pairs or a callable returning them (e.g. the account's providers); a
    value outside them resets the table. Filters without a `title` are not shown (but work)."""

    name: str
    apply: Callable[[QuerySet, Any], QuerySet]
    title: str | None = None
    kind: FilterKind = "search"
    choices: Sequence[tuple[str, str]] | Callable[[], Sequence[tuple[str, str]]] = ()
    multiple: bool = False

    def resolved_choices(self) -> list[tuple[str, str]]:
        choices = self.choices() if callable(self.choices) else self.choices
        return [(str(v), str(label)) for v, label in choices]

    @property
    def widget(self) -> str:
        if self.kind == "uuid":
            return "select"
        if self.kind != "select":
            return self.kind
        return "radio" if 0 < len(self.resolved_choices()) <= 4 else "select"


def _active_or_disabled(queryset: QuerySet, value: str) -> QuerySet:
    return queryset.filter(disabled_at__isnull=value == "active")


def name_contains(queryset: QuerySet, value: str) -> QuerySet:
    """The "Name" search of tables of named rows."""
    return queryset.filter(name__icontains=value)


# The "Status" radios (All / Active / Disabled) of every table of rows with `disabled_at`.
STATUS_FILTER = Filter(
    "status",
    _active_or_disabled,
    title="Status",
    kind="select",
    choices=[("active", "Active"), ("disabled", "Disabled")],
)


@dataclass(frozen=True)
class Column:
    """A header cell; `order` names an entry of the table's `orders` to make it sortable."""

    label: str
    order: str | None = None
    css: str = ""


@dataclass
class LiveTable:
    """Configuration of one table; `page(request, queryset)` reads its params and queries."""

    id: str
    columns: Sequence[Column]
    row_template: str
    # Sort keys by name: a field name or an expression (never NULL).
    orders: Mapping[str, str | Expression]
    default_order: tuple[str, Literal["asc", "desc"]]
    filters: Sequence[Filter] = ()
    empty_message: str = "Nothing to display."
    # A template for empty states that hold links or buttons (rendered with the page context).
    empty_template: str = ""
    binding: str = ""
    page_size: int = PAGE_SIZE
    # Extra context for the row template (e.g. the presence map, the site being shown).
    context: dict[str, Any] = field(default_factory=dict)
    # Live updates (§7): topics this table follows and what an event does: "reload" re-queries
    # the table at once, "stale" shows the "Reload" button.
    live_topics: Sequence[str] = ()
    live_mode: Literal["reload", "stale"] = "reload"
    hidden_filters: Sequence[str] = ()

    # --- parameters -------------------------------------------------------------------------

    def key(self, name: str) -> str:
        return f"{self.id}_{name}"

    def filter_key(self, name: str) -> str:
        return f"{self.id}_filter[{name}]"

    def owns(self, param: str) -> bool:
        return param.startswith(f"{self.id}_")

    def other_params(self, query: QueryDict) -> list[tuple[str, str]]:
        """The query string entries of everything but this table (other tables, page params)."""
        return [(k, v) for k, values in query.lists() if not self.owns(k) for v in values]

    def reset_url(self, request: HttpRequest) -> str:
        rest = self.other_params(request.GET)
        return request.path + (f"?{urlencode(rest)}" if rest else "")

    # --- query ------------------------------------------------------------------------------

    def page(self, request: HttpRequest, queryset: QuerySet) -> TablePage:
        query = request.GET
        try:
            filters = self._read_filters(query)
            order_name, direction = self._read_order(query)
            cursor = self._read_cursor(query.get(self.key("cursor")), order_name)
        except _Invalid as exc:
            raise TableReset(exc.message, self.reset_url(request)) from None

        for flt, value in filters.values():
            queryset = flt.apply(queryset, value)
        total = queryset.count()
        try:
            keyset = keyset_page(
                queryset,
                self.orders[order_name],
                ascending=direction == "asc",
                cursor=cursor,
                size=self.page_size,
            )
        except ValueError:
            raise TableReset(MSG_CURSOR, self.reset_url(request)) from None
        return TablePage(
            table=self,
            request=request,
            rows=keyset.rows,
            total=total,
            order=(order_name, direction),
            filters={name: value for name, (_f, value) in filters.items()},
            next_cursor=keyset.next_cursor,
            prev_cursor=keyset.prev_cursor,
        )

    def _read_filters(self, query: QueryDict) -> dict[str, tuple[Filter, Any]]:
        by_name = {f.name: f for f in self.filters}
        found: dict[str, tuple[Filter, Any]] = {}
        prefix = f"{self.id}_filter["
        for key in query:
            if not key.startswith(prefix):
                continue
            inner = key[len(prefix) :]
            is_list = inner.endswith("][]")
            name = inner[:-3] if is_list else inner[:-1] if inner.endswith("]") else None
            flt = by_name.get(name or "")
            if flt is None or is_list != flt.multiple:
                raise _Invalid(MSG_UNDEFINED_FILTER)
            values = [v.strip() for v in query.getlist(key)]
            values = [v for v in values if v]
            if not values:
                continue
            if flt.kind != "search":
                allowed = {v for v, _ in flt.resolved_choices()}
                if any(v not in allowed for v in values):
                    raise _Invalid(MSG_FILTER_VALUE)
            elif any(len(v) > 255 for v in values):
                raise _Invalid(MSG_FILTER_VALUE)
            found[flt.name] = (flt, values if flt.multiple else values[0])
        return found

    def _read_order(self, query: QueryDict) -> tuple[str, Literal["asc", "desc"]]:
        raw = query.get(self.key("order_by"))
        if not raw:
            return self.default_order
        parts = raw.split(":")
        if len(parts) != 3 or parts[1] not in ("asc", "desc") or parts[2] not in self.orders:
            raise _Invalid(MSG_FILTER)
        return parts[2], "asc" if parts[1] == "asc" else "desc"

    def _read_cursor(self, raw: str | None, order_name: str) -> Cursor | None:
        try:
            return read_cursor(raw)
        except ValueError:
            raise _Invalid(MSG_CURSOR) from None


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["dt"])
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise ValueError("bad cursor value")


def _encode(kind: str, row: Any) -> str:
    payload = {"d": kind, "v": _encode_value(row._fz_key), "i": str(row.pk)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- keyset pagination (the live tables and the REST API's lists) -------------------------------

# ("after" | "before", sort key value, primary key) of a row a page starts next to.
Cursor = tuple[str, Any, str]


def read_cursor(raw: str | None) -> Cursor | None:
    """An opaque cursor of `keyset_page` (None when absent); ValueError when unreadable."""
    if not raw:
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        kind, value, pk = data["d"], _decode_value(data["v"]), str(uuid.UUID(str(data["i"])))
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise ValueError("unreadable cursor") from None
    if kind not in ("after", "before"):
        raise ValueError("unreadable cursor")
    return kind, value, pk


@dataclass(frozen=True)
class KeysetPage:
    rows: list[Any]
    next_cursor: str | None
    prev_cursor: str | None


def keyset_page(
    queryset: QuerySet,
    key: str | Expression,
    *,
    ascending: bool,
    cursor: Cursor | None,
    size: int,
) -> KeysetPage:
    """One page of `queryset` ordered by `key` (a field name or a never-NULL expression), then
    the primary key, next to `cursor`: one rows query of `size + 1` rows. ValueError when the
    cursor's value cannot be compared with `key` (a cursor of another list)."""
    ordered = queryset.annotate(_fz_key=F(key) if isinstance(key, str) else key)
    backwards = cursor is not None and cursor[0] == "before"
    forward_asc = ascending != backwards  # walking backwards flips the order
    sign = "" if forward_asc else "-"
    try:  # the value's type may not fit the key (a cursor of another list)
        if cursor is not None:
            value, pk = cursor[1], cursor[2]
            op = "gt" if forward_asc else "lt"
            # The first condition is implied by the second; it bounds an index scan on (key, pk),
            # so a page deep in the list does not read the rows before it.
            ordered = ordered.filter(
                Q(**{f"_fz_key__{op}e": value}),
                Q(**{f"_fz_key__{op}": value}) | Q(_fz_key=value, **{f"pk__{op}": pk}),
            )
        rows = list(ordered.order_by(f"{sign}_fz_key", f"{sign}pk")[: size + 1])
    except (DjangoValidationError, TypeError) as exc:
        raise ValueError("cursor of another list") from exc
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    has_next = (more if not backwards else True) and bool(rows)
    has_prev = (cursor is not None if not backwards else more) and bool(rows)
    return KeysetPage(
        rows=rows,
        next_cursor=_encode("after", rows[-1]) if has_next else None,
        prev_cursor=_encode("before", rows[0]) if has_prev else None,
    )


@dataclass
class FilterView:
    name: str
    title: str
    widget: str
    key: str
    value: Any
    choices: list[tuple[str, str]]


@dataclass
class TablePage:
    """One rendered page of a live table: what the `live_table` template tag draws."""

    table: LiveTable
    request: HttpRequest
    rows: list[Any]
    total: int
    order: tuple[str, str]
    filters: dict[str, Any]
    next_cursor: str | None
    prev_cursor: str | None

    @property
    def id(self) -> str:
        return self.table.id

    @property
    def filtered(self) -> bool:
        return bool(self.filters)

    def url(self, **changes: str | None) -> str:
        """This page's URL with some of this table's params changed (None drops one)."""
        query = self.request.GET.copy()
        for name, value in changes.items():
            key = self.table.key(name)
            if value is None:
                query.pop(key, None)
            else:
                query[key] = value
        encoded = query.urlencode()
        return self.request.path + (f"?{encoded}" if encoded else "")

    @property
    def next_url(self) -> str | None:
        return self.url(cursor=self.next_cursor) if self.next_cursor else None

    @property
    def prev_url(self) -> str | None:
        return self.url(cursor=self.prev_cursor) if self.prev_cursor else None

    @property
    def clear_filters_url(self) -> str:
        query = self.request.GET.copy()
        for key in list(query):
            if key.startswith(f"{self.table.id}_filter[") or key == self.table.key("cursor"):
                query.pop(key)
        encoded = query.urlencode()
        return self.request.path + (f"?{encoded}" if encoded else "")

    def sort_url(self, order_name: str) -> str:
        current, direction = self.order
        new_dir = "desc" if (current == order_name and direction == "asc") else "asc"
        binding = self.table.binding or self.table.id
        return self.url(cursor=None, order_by=f"{binding}:{new_dir}:{order_name}")

    @property
    def headers(self) -> list[dict[str, Any]]:
        current, direction = self.order
        return [
            {
                "label": col.label,
                "css": col.css,
                "sort_url": self.sort_url(col.order) if col.order else None,
                "sorted": direction if col.order == current else None,
            }
            for col in self.table.columns
        ]

    @property
    def visible_filters(self) -> list[FilterView]:
        views = []
        for flt in self.table.filters:
            if not flt.title or flt.name in self.table.hidden_filters:
                continue
            key = self.table.filter_key(flt.name) + ("[]" if flt.multiple else "")
            views.append(
                FilterView(
                    flt.name,
                    flt.title,
                    flt.widget,
                    key,
                    self.filters.get(flt.name, ""),
                    flt.resolved_choices(),
                )
            )
        return views

    @property
    def preserved_params(self) -> list[tuple[str, str]]:
        """Hidden inputs of the filter form: other tables' state and this table's order."""
        kept = self.table.other_params(self.request.GET)
        order = self.request.GET.get(self.table.key("order_by"))
        if order:
            kept.append((self.table.key("order_by"), order))
        return kept

    @property
    def row_context(self) -> dict[str, Any]:
        return self.table.context
