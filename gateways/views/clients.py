"""Admin pages: clients (portal.md §4.7): the list with its verification / presence / name
filters, the client page (details, device attributes, verification, recent connections,
deletion) and the rename page.

Online status is presence (Redis), not a column: each page reads the presence set once and the
list's Presence filter narrows the rows by those ids in SQL, so a page costs the same number of
queries whatever is online. The list re-queries itself on presence events of the account's
clients; the client page re-reads its details on presence events of the owner's clients.

Client page events (POST `action`): verify, remove_verification, delete.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import render

from accounts.models import Account, Actor
from firezone.web.client_os import os_of
from firezone.web.edit import edit_page
from firezone.web.events import page_events
from firezone.web.pages import account_url, redirect_info
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from firezone.web.tables import Column, Filter, LiveTable
from gateways.client_forms import ClientForm
from gateways.models import Client
from gateways.presence import account_clients_topic, actor_clients_topic, list_presences_sync
from gateways.selectors.clients import client_get, client_list, client_sign_in_token
from gateways.services.clients import (
    client_delete,
    client_remove_verification,
    client_update,
    client_verify,
)
from resources.selectors.flows import flow_list_for
from resources.tables import flows_table

logger = logging.getLogger(__name__)

MSG_DELETED = "Client was deleted."

ROLE_SUFFIXES: dict[str, str] = {
    Actor.Type.ACCOUNT_ADMIN_USER: " (admin)",
    Actor.Type.SERVICE_ACCOUNT: " (service account)",
    Actor.Type.API_CLIENT: " (api client)",
}


# --- operating systems (from the user agent, e.g. "iOS/12.7 (iPhone) connlib/1.3.0") -------------


# --- presence ------------------------------------------------------------------------------------


def _presences(topic: str) -> dict[str, list[dict]]:
    """`{client id: metas}` of a presence topic (Redis; an outage shows everyone offline)."""
    try:
        return list_presences_sync(topic)
    except Exception:
        logger.warning("presence of %s unavailable", topic, exc_info=True)
        return {}


def _ids(keys: Iterable[str]) -> list[uuid.UUID]:
    found = []
    for key in keys:
        try:
            found.append(uuid.UUID(str(key)))
        except ValueError:
            continue
    return found


def _decorate(clients: Iterable[Any], online: set[uuid.UUID]) -> None:
    for client in clients:
        client.online = client.pk in online
        client.os = os_of(client.last_seen_user_agent)
        client.role_suffix = ROLE_SUFFIXES.get(client.actor.type, "")


# --- list ----------------------------------------------------------------------------------------


def _verification(queryset: QuerySet[Client], value: str) -> QuerySet[Client]:
    return queryset.filter(verified_at__isnull=value != "verified")


def _client_or_actor_name(queryset: QuerySet[Client], value: str) -> QuerySet[Client]:
    return queryset.filter(Q(name__icontains=value) | Q(actor__name__icontains=value))


def _clients_table(account: Account, online: list[uuid.UUID]) -> LiveTable:
    def presence(queryset: QuerySet[Client], value: str) -> QuerySet[Client]:
        if value == "online":
            return queryset.filter(pk__in=online)
        return queryset.exclude(pk__in=online)

    return LiveTable(
        id="clients",
        columns=[
            Column("", css="os"),
            Column("name", order="name"),
            Column("user"),
            Column("status"),
            Column("last started", order="last_seen_at"),
            Column("created", order="inserted_at"),
        ],
        row_template="gateways/clients/_row.html",
        orders={"name": "name", "last_seen_at": "last_seen_at", "inserted_at": "inserted_at"},
        default_order=("last_seen_at", "desc"),
        filters=[
            Filter(
                "verification",
                _verification,
                title="Verification Status",
                kind="select",
                choices=[("verified", "Verified"), ("not_verified", "Not Verified")],
            ),
            Filter(
                "presence",
                presence,
                title="Presence",
                kind="select",
                choices=[("online", "Online"), ("offline", "Offline")],
            ),
            Filter("name", _client_or_actor_name, title="Client Name or Actor Name"),
        ],
        empty_message="No Actors have signed in from any Client.",
        live_topics=[account_clients_topic(account.pk)],
        live_mode="reload",
    )


@admin_required
def clients_list(request: PortalRequest, account: Account) -> HttpResponse:
    online = _ids(_presences(account_clients_topic(account.pk)))
    page = _clients_table(account, online).page(request, client_list(request.subject))
    _decorate(page.rows, set(online))
    context = {"page_title": "Clients", "breadcrumbs": [("Clients", None)], "page": page}
    return render(request, "gateways/clients/list.html", context)


# --- detail --------------------------------------------------------------------------------------


FLOWS_TABLE = flows_table(
    columns=["authorized", "remote ip", "policy", "gateway"],
    row_template="gateways/clients/_flow_row.html",
)


def _client_url(account: Account, client: Client) -> str:
    return account_url(account, "client", id=client.pk)


def _crumbs(account: Account, *rest: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Clients", account_url(account, "clients")), *rest]


def _detail_event(request: PortalRequest, account: Account, client: Client) -> HttpResponse:
    subject = request.subject

    def verify() -> None:
        client_verify(subject=subject, client=client)

    def remove_verification() -> None:
        client_remove_verification(subject=subject, client=client)

    def delete() -> HttpResponse:
        client_delete(subject=subject, client=client)
        return redirect_info(request, account_url(account, "clients"), MSG_DELETED)

    handlers = {"verify": verify, "remove_verification": remove_verification, "delete": delete}
    return page_events(request, here=_client_url(account, client), handlers=handlers)


def _location(client: Client) -> str:
    parts = [client.last_seen_remote_ip_location_city, client.last_seen_remote_ip_location_region]
    return ", ".join(p for p in parts if p)


@admin_required
def client_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    client = client_get(subject, client_id=id)
    if request.method == "POST":
        return _detail_event(request, account, client)

    topic = actor_clients_topic(client.actor_id)
    metas = _presences(topic).get(str(client.pk), [])
    # The newest connection's token is the one in use (metas are oldest first).
    token_id = next((m.get("token_id") for m in reversed(metas) if m.get("token_id")), None)
    token = client_sign_in_token(subject, client=client, token_id=token_id) if token_id else None
    verifier = (client.verified_by_subject or {}).get("name") or "System"
    if client.verified_by == "system":
        verifier = "System"
    flows = flow_list_for(subject, client=client).select_related(
        "policy__actor_group", "policy__resource", "gateway__group"
    )
    context = {
        "page_title": f"Client {client.name}",
        "breadcrumbs": _crumbs(account, (client.name, None)),
        "client": client,
        "actor": client.actor,
        "role_suffix": ROLE_SUFFIXES.get(client.actor.type, ""),
        "online": bool(metas),
        "token": token,
        "live_topic": topic,
        "os": os_of(client.last_seen_user_agent),
        "location": _location(client),
        "verifier": verifier,
        "flows": FLOWS_TABLE.page(request, flows),
    }
    return render(request, "gateways/clients/detail.html", context)


# --- edit ----------------------------------------------------------------------------------------


@admin_required
def client_edit(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    client = client_get(request.subject, client_id=id)

    def save(form: ClientForm) -> str:
        client_update(subject=request.subject, client=client, name=form.cleaned_data["name"])
        return _client_url(account, client)

    return edit_page(
        request,
        ClientForm(request.POST or None, initial={"name": client.name}),
        template="gateways/clients/edit.html",
        context={
            "page_title": f"Edit Client {client.name}",
            "breadcrumbs": _crumbs(
                account, (client.name, _client_url(account, client)), ("Edit", None)
            ),
            "client": client,
        },
        save=save,
    )
