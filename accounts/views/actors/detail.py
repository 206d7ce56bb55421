"""Admin page: an actor (portal.md §4.5.7) with its identities, tokens, clients, activity and
groups, and its events (POST `action`): disable, enable, delete, send_welcome_email,
delete_identity, revoke_token, revoke_all. Identity and token ids posted with an event must
belong to the actor of the page (else the standard 404)."""

from __future__ import annotations

import dataclasses
import logging

from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone

from accounts.models import Account, Actor, AuthIdentity
from accounts.selectors.actors import actor_get
from accounts.selectors.groups import group_list_for_actor
from accounts.selectors.identities import (
    identity_get,
    identity_list_for_actor,
    identity_provider_options,
)
from accounts.selectors.tokens import tokens_list_for_actor
from accounts.services.identities import identity_delete
from accounts.services.welcome_emails import identity_welcome_address, identity_welcome_email_send
from accounts.views.actors.common import (
    TYPE_LABELS,
    actor_events,
    actor_url,
    crumbs,
    decorate_clients,
    online_ids,
)
from firezone.errors import NotFound
from firezone.web import audit
from firezone.web.events import page_events
from firezone.web.pages import account_url, redirect_error, redirect_info
from firezone.web.ratelimit import Limit
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from firezone.web.tables import Column, Filter, LiveTable, name_contains
from gateways.presence import actor_clients_topic
from gateways.selectors.clients import client_list_for_actor
from resources.explain_forms import access_form_for_actor
from resources.selectors.flows import flow_list_for
from resources.tables import flows_table

logger = logging.getLogger(__name__)

# "Send Welcome Email": 3 per identity per 3 minutes, window extended on each hit (§3.15).
WELCOME_EMAILS_PER_IDENTITY = Limit("welcome_email", 3, 3 * 60, sliding=True)

MSG_IDENTITY_DELETED = "Identity was deleted."
MSG_WELCOME_LIMITED = "You sent too many welcome emails to this address. Please try again later."
MSG_WELCOME_FAILED = "Unknown error while sending welcome email. We're looking into it."

ROLE_NAMES: dict[str, str] = {
    Actor.Type.ACCOUNT_USER: "user",
    Actor.Type.ACCOUNT_ADMIN_USER: "admin",
    Actor.Type.SERVICE_ACCOUNT: "service account",
    Actor.Type.API_CLIENT: "api client",
}

# --- actor page ----------------------------------------------------------------------------------

IDENTITIES_TABLE = LiveTable(
    id="identities",
    columns=[Column("identity"), Column("created"), Column("last signed in"), Column("")],
    row_template="accounts/actors/_identity_row.html",
    orders={"inserted_at": "inserted_at"},
    default_order=("inserted_at", "desc"),
    empty_message=(
        "No authentication identities to display. Create an identity to authenticate this user."
    ),
)


def _tokens_table(service_account: bool) -> LiveTable:
    return LiveTable(
        id="tokens",
        columns=[
            Column("type"),
            Column("name" if service_account else "identity"),
            Column("created"),
            Column("expires"),
            Column("last used"),
            Column(""),
        ],
        row_template="accounts/actors/_token_row.html",
        orders={"inserted_at": "inserted_at"},
        default_order=("inserted_at", "desc"),
        empty_message="No authentication tokens to display.",
        context={"service_account": service_account},
    )


CLIENTS_TABLE = LiveTable(
    id="clients",
    columns=[
        Column("", css="os"),
        Column("name", order="name"),
        Column("status"),
        Column("last started", order="last_seen_at"),
        Column("created", order="inserted_at"),
    ],
    row_template="accounts/actors/_client_row.html",
    orders={"name": "name", "last_seen_at": "last_seen_at", "inserted_at": "inserted_at"},
    default_order=("last_seen_at", "desc"),
    filters=[Filter("name", name_contains, title="Name")],
    empty_message="Actor has not signed in from any Client.",
    live_mode="reload",
)

FLOWS_TABLE = flows_table(
    columns=["authorized", "policy", "client", "gateway"],
    row_template="accounts/actors/_flow_row.html",
)


GROUPS_TABLE = LiveTable(
    id="groups",
    columns=[Column("name", order="name")],
    row_template="accounts/actors/_group_row.html",
    orders={"name": "name"},
    default_order=("name", "asc"),
    filters=[Filter("name", name_contains, title="Name")],
    empty_message="No Groups to display.",
)


def _event_identity(request: PortalRequest, actor: Actor) -> AuthIdentity:
    identity = identity_get(request.subject, identity_id=request.POST.get("identity_id"))
    if identity.actor_id != actor.pk:
        raise NotFound()
    return identity


def _detail_event(request: PortalRequest, account: Account, actor: Actor) -> HttpResponse:
    subject = request.subject
    here = actor_url(account, actor)

    def delete_identity() -> HttpResponse:
        identity_delete(subject=subject, identity=_event_identity(request, actor))
        return redirect_info(request, here, MSG_IDENTITY_DELETED)

    gone = account_url(account, "actors")
    handlers = {
        **actor_events(request, actor, here=here, gone=gone, noun="Actor"),
        "send_welcome_email": lambda: _send_welcome(request, here, _event_identity(request, actor)),
        "delete_identity": delete_identity,
    }
    return page_events(request, here=here, handlers=handlers)


def _send_welcome(request: PortalRequest, here: str, identity: AuthIdentity) -> HttpResponse:
    if not identity_welcome_address(identity):
        return HttpResponseRedirect(here)
    if not WELCOME_EMAILS_PER_IDENTITY.hit(identity.pk):
        return redirect_error(request, here, MSG_WELCOME_LIMITED)
    try:
        sent_to = identity_welcome_email_send(subject=request.subject, identity=identity)
    except Exception:
        logger.exception("welcome email for identity %s failed", identity.pk)
        return redirect_error(request, here, MSG_WELCOME_FAILED)
    return redirect_info(request, here, f"Welcome email sent to {sent_to}")


@admin_required
def actor_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    actor = actor_get(subject, actor_id=id)
    if actor.is_api_client:
        return HttpResponseRedirect(account_url(account, "api_client", id=actor.pk))
    if request.method == "POST":
        return _detail_event(request, account, actor)

    service_account = actor.is_service_account
    identities_page = None
    can_add_identity = False
    has_identities = False
    if actor.is_user:
        identities = identity_list_for_actor(subject, actor=actor)
        identities_page = IDENTITIES_TABLE.page(request, identities)
        for identity in identities_page.rows:
            identity.welcome_to = identity_welcome_address(identity)
            identity.synced = identity.created_by == "provider"
        can_add_identity = identity_provider_options(subject, actor=actor).exists()
        has_identities = identities_page.total > 0
    tokens = tokens_list_for_actor(subject, actor=actor).select_related("identity__provider")
    tokens_page = _tokens_table(service_account).page(request, tokens)
    now = timezone.now()
    for token in tokens_page.rows:
        token.expired = token.expires_at is not None and token.expires_at <= now

    clients_topic = actor_clients_topic(actor.pk)
    clients_table = dataclasses.replace(CLIENTS_TABLE, live_topics=[clients_topic])
    clients_page = clients_table.page(request, client_list_for_actor(subject, actor_id=actor.pk))
    decorate_clients(clients_page.rows, online_ids(clients_topic) if clients_page.rows else set())

    flows = flow_list_for(subject, actor=actor).select_related(
        "policy__actor_group", "policy__resource", "gateway__group"
    )
    flows_page = FLOWS_TABLE.page(request, flows)
    groups = group_list_for_actor(subject, actor=actor).select_related("provider")
    groups_page = GROUPS_TABLE.page(request, groups)

    type_label = TYPE_LABELS.get(actor.type, "Actor")
    lower = type_label.lower()
    labels = {
        "disable": f"Disable {type_label}",
        "disable_body": (
            f"Are you sure you want to disable this {lower} and revoke all its tokens?"
        ),
        "enable": f"Enable {type_label}",
        "enable_body": f"Are you sure you want to enable this {lower}?",
        "delete": f"Delete {type_label}",
        "delete_title": f"Confirm {type_label} deletion",
        "delete_body": (
            f"Are you sure you want to delete this {lower} along with all associated identities?"
        ),
    }
    context = {
        "page_title": f"Actor {actor.name}",
        "labels": labels,
        "breadcrumbs": crumbs(account, (actor.name, None)),
        "actor": actor,
        "type_label": type_label,
        "role": ROLE_NAMES.get(actor.type, actor.type),
        "is_self": actor.pk == subject.actor_id,
        "service_account": service_account,
        "identities": identities_page,
        "can_add_identity": can_add_identity,
        "tokens": tokens_page,
        "clients": clients_page,
        "flows": flows_page,
        "groups": groups_page,
        # Synced actors come back with the next sync while they still have identities.
        "can_delete": not (actor.is_synced and has_identities),
        "history": audit.history(account, "actors", actor.pk),
        # "Check access" (issue 18 item 6) asks the actor's access page.
        "access_form": access_form_for_actor(subject, actor=actor, data=None),
        "access_url": account_url(account, "actor_access", id=actor.pk),
    }
    return render(request, "accounts/actors/detail.html", context)
