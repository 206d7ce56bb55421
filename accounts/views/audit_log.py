"""Settings → Audit log (issue 18): the account's configuration changes, filtered and paged by
`lsn` (newest first), and their export as CSV or JSON Lines, streamed from a server-side cursor.

Query string (a plain GET form; htmx swaps `#audit-log-table`): `actor`, `table`, `object`,
`since`, `until` (filters), `after` / `before` (keyset position, an `lsn`). A bad filter value
shows the form's error and no rows; another account's object id simply matches nothing (rows
are scoped by account first)."""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils import timezone

from accounts.models import Account, Actor
from accounts.selectors.audit import (
    OBJECT_TYPES,
    AuditFilters,
    audit_export,
    audit_page,
    oldest_entry_at,
)
from firezone.audit_retention import kept_since, retention_days
from firezone.errors import NotFound
from firezone.web.audit import filters_query, present, present_all
from firezone.web.pages import account_url
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required

PAGE_SIZE = 50
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z"]
CSV_COLUMNS = [
    "lsn",
    "at",
    "who_kind",
    "who",
    "who_detail",
    "object_type",
    "object_id",
    "object_name",
    "action",
    "remote_ip",
    "user_agent",
    "changes",
]


class AuditFilterForm(forms.Form):
    actor = forms.ChoiceField(required=False)
    table = forms.ChoiceField(
        required=False,
        choices=[("", "Any object type"), *sorted(OBJECT_TYPES.items(), key=lambda c: c[1])],
    )
    object = forms.UUIDField(required=False)
    since = forms.DateTimeField(required=False, input_formats=DATETIME_FORMATS)
    until = forms.DateTimeField(required=False, input_formats=DATETIME_FORMATS)

    def __init__(self, data: Any, *, account: Account) -> None:
        super().__init__(data)
        actors = Actor.objects.filter(account=account).order_by("name").values_list("pk", "name")
        actor_field = self.fields["actor"]
        assert isinstance(actor_field, forms.ChoiceField)
        actor_field.choices = [("", "Anyone"), *((str(pk), name) for pk, name in actors)]

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            actor_id=data.get("actor") or None,
            table=data.get("table") or None,
            object_id=str(data["object"]) if data.get("object") else None,
            since=data.get("since"),
            until=data.get("until"),
        )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _form(request: PortalRequest, account: Account) -> AuditFilterForm:
    # The actor choices are the account's actors; an unknown actor id is a form error.
    return AuditFilterForm(request.GET or None, account=account)


@admin_required
def audit_log(request: PortalRequest, account: Account) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    form = _form(request, account)
    valid = form.is_valid() if form.is_bound else True
    filters = form.filters() if form.is_bound and valid else AuditFilters()
    page = None
    entries: list[Any] = []
    query = filters_query(filters)
    here = account_url(account, "settings_audit_log")
    if valid:
        page = audit_page(
            account.pk,
            filters,
            after=_int(request.GET.get("after")),
            before=_int(request.GET.get("before")),
            size=PAGE_SIZE,
        )
        entries = present(account, page.rows)
    days = retention_days()
    context = {
        "page_title": "Audit Log",
        "breadcrumbs": [("Audit Log", None)],
        "account": account,
        "form": form,
        "entries": entries,
        "next_url": account_url(
            account, "settings_audit_log", query={**query, "after": page.next_after}
        )
        if page and page.next_after
        else None,
        "prev_url": account_url(
            account, "settings_audit_log", query={**query, "before": page.prev_before}
        )
        if page and page.prev_before
        else None,
        "clear_url": here,
        "csv_url": account_url(account, "settings_audit_log_export", format="csv", query=query),
        "jsonl_url": account_url(account, "settings_audit_log_export", format="jsonl", query=query),
        "retention_days": days,
        "retention_since": kept_since(),
        "oldest_at": oldest_entry_at(account.pk),
    }
    return render(request, "accounts/settings/audit_log.html", context)


class _Echo:
    """A file-like whose `write` returns the line: csv.writer then yields strings to stream."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(account: Account, filters: AuditFilters) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in present_all(account, audit_export(account.pk, filters)):
        record = entry.as_record()
        record["changes"] = json.dumps(record["changes"], sort_keys=True)
        yield writer.writerow([record[c] if record[c] is not None else "" for c in CSV_COLUMNS])


def _jsonl_lines(account: Account, filters: AuditFilters) -> Iterator[str]:
    for entry in present_all(account, audit_export(account.pk, filters)):
        yield json.dumps(entry.as_record(), sort_keys=True) + "\n"


STREAM_BATCH = 500


def _streamed(request: HttpRequest, lines: Iterator[str]) -> Iterator[str] | AsyncIterator[str]:
    """Under ASGI Django would read a sync iterator whole (`sync_to_async(list)`) before sending
    it: hand it an async iterator that pulls a batch at a time, on the one thread that owns the
    request's database connection (and so the server-side cursor)."""
    if not isinstance(request, ASGIRequest):
        return lines
    take = sync_to_async(lambda: list(itertools.islice(lines, STREAM_BATCH)), thread_sensitive=True)

    async def batches() -> AsyncIterator[str]:
        while batch := await take():
            for line in batch:
                yield line

    return batches()


@admin_required
def audit_log_export(request: PortalRequest, account: Account, format: str) -> HttpResponse:
    """The filtered view, every row in the page's order (no pagination), streamed: rows are
    read in chunks through a server-side cursor and written as they come."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if format not in ("csv", "jsonl"):
        raise NotFound()
    form = _form(request, account)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filters.", status=400, content_type="text/plain")
    filters = form.filters() if form.is_bound else AuditFilters()
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    if format == "csv":
        response = StreamingHttpResponse(
            _streamed(request, _csv_lines(account, filters)), content_type="text/csv"
        )
    else:
        response = StreamingHttpResponse(
            _streamed(request, _jsonl_lines(account, filters)), content_type="application/x-ndjson"
        )
    response["Content-Disposition"] = f'attachment; filename="audit_log_{stamp}.{format}"'
    # The page decorator's type names HttpResponse; Django serves either.
    return response  # type: ignore[return-value]
