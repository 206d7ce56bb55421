"""Helpers shared by the admin pages (portal.md §4): feature gates, flashes with redirects, the
"event" convention of interactive pages and the account's named routes (`account_url`).

Interactive pages (the LIVE routes of portal.md §2) are one view per route: GET renders, POST
carries an `action` field naming the event ("delete", "revoke_all", "disable"...) and answers with a
redirect (post/redirect/get) and a flash (`firezone.web.events.page_events`). Forms post to
their own page and re-render with errors. Tables and live regions are re-fetched by htmx GETs of
the page (`request.htmx`, portal.md §7).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from accounts.features import feature_enabled
from accounts.models import Account
from firezone.web.session import account_path, not_found

View = Callable[..., HttpResponse]


def account_url(
    account: Account,
    name: str,
    *,
    query: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    fragment: str = "",
    **kwargs: Any,
) -> str:
    """The named admin route `name` of the account (links always use the slug when there is
    one), with its other URL arguments, an optional query string and #fragment."""
    path = reverse(name, kwargs={"account": account_path(account), **kwargs})
    if query:
        path += f"?{urlencode(query, safe='[]')}"  # filter keys read better unescaped
    return f"{path}#{fragment}" if fragment else path


def feature_required(feature: str) -> Callable[[View], View]:
    """Admin + feature pages (§1.1): the standard 404 when the account lacks the feature.
    Goes *inside* `admin_required` (it reads the resolved `account`)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, account: Account, **kw: Any) -> HttpResponse:
            if not feature_enabled(account, feature):
                return not_found(request)
            return view(request, *args, account=account, **kw)

        return wrapper

    return decorate


def redirect_info(request: HttpRequest, to: str, message: str) -> HttpResponse:
    messages.info(request, message)
    return HttpResponseRedirect(to)


def redirect_error(request: HttpRequest, to: str, message: str) -> HttpResponse:
    messages.error(request, message)
    return HttpResponseRedirect(to)


def action_of(request: HttpRequest) -> str:
    """The event a POST carries (`action` field); "" for plain form submissions."""
    return request.POST.get("action", "") if request.method == "POST" else ""


def render_secret(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """A page showing a token once: never kept by the browser's or a proxy's cache."""
    response = render(request, template, context)
    response["Cache-Control"] = "no-store"
    return response


def uuids_in(values: Iterable[str]) -> set[uuid.UUID]:
    """The UUIDs in query values (repeated keys or comma-separated), ignoring anything else:
    pending membership changes kept in the URL (`?add=<id>&remove=<id>`)."""
    found = set()
    for value in values:
        for part in str(value).split(","):
            try:
                found.add(uuid.UUID(part.strip()))
            except ValueError:
                continue
    return found
