"""Admin page: the actors list (portal.md §4.5.1): a live table with the groups and clients
peeks of each row."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpResponse
from django.shortcuts import render

from accounts.models import Account, Actor, AuthIdentity
from accounts.selectors.actors import actor_groups_peek, actor_list
from accounts.selectors.providers import provider_list
from accounts.views.actors.common import decorate_clients, name_or_email, online_ids
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from firezone.web.tables import STATUS_FILTER, Column, Filter, LiveTable
from gateways.presence import account_clients_topic
from gateways.selectors.clients import client_peek_by_actor

# --- list ----------------------------------------------------------------------------------------


def _provider(queryset: QuerySet[Actor], value: str) -> QuerySet[Actor]:
    provider_id = uuid.UUID(value)  # one of the filter's choices: a valid id
    identities = AuthIdentity.objects.filter(actor_id=OuterRef("pk"), provider_id=provider_id)
    return queryset.filter(Exists(identities))


def _actors_table(providers: list[tuple[str, str]]) -> LiveTable:
    return LiveTable(
        id="actors",
        columns=[
            Column("name", order="name"),
            Column("identifiers"),
            Column("groups"),
            Column("clients"),
            Column("status"),
            Column("last signed in"),
        ],
        row_template="accounts/actors/_row.html",
        orders={"name": "name", "inserted_at": "inserted_at"},
        default_order=("inserted_at", "asc"),
        filters=[
            Filter("name_or_email", name_or_email, title="Name or Email"),
            Filter("provider_id", _provider, title="Provider", kind="uuid", choices=providers),
            STATUS_FILTER,
        ],
        empty_message="No actors to display.",
    )


def _peek_title(peek: dict[str, Any]) -> str:
    """The groups popover as a tooltip: "Eng, Ops, QA and 2 more."."""
    names = ", ".join(item.name for item in peek["items"])
    more = peek["count"] - len(peek["items"])
    return f"{names} and {more} more." if more > 0 else names


@admin_required
def actors_list(request: PortalRequest, account: Account) -> HttpResponse:
    subject = request.subject
    # A fixed list of choices: the filter widget and the value check read it several times.
    providers = [(str(p.pk), p.name) for p in provider_list(subject)]
    identities = AuthIdentity.objects.select_related("provider").order_by("inserted_at", "id")
    queryset = actor_list(subject).prefetch_related(Prefetch("identities", queryset=identities))
    page = _actors_table(providers).page(request, queryset)
    ids = [row.pk for row in page.rows]
    groups = actor_groups_peek(subject, actor_ids=ids, limit=3) if ids else {}
    clients = client_peek_by_actor(subject, actor_ids=ids, limit=5) if ids else {}
    online = online_ids(account_clients_topic(account.pk)) if ids else set()
    for row in page.rows:
        row.group_peek = groups.get(row.pk, {"count": 0, "items": []})
        row.groups_title = _peek_title(row.group_peek)
        row.client_peek = clients.get(row.pk, {"count": 0, "items": []})
        row.clients_more = row.client_peek["count"] - len(row.client_peek["items"])
        decorate_clients(row.client_peek["items"], online)
    context = {"page_title": "Actors", "breadcrumbs": [("Actors", None)], "page": page}
    return render(request, "accounts/actors/list.html", context)
