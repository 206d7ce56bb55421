"""Shared by the actor pages (portal.md §4.5): labels, URLs and breadcrumbs, the actor lookups
of the pages, the client decorations (OS icon, presence) and the lifecycle and token events of an
actor's page (also the API client page's, §4.12)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpResponse, HttpResponseRedirect

from accounts.auth import can_grant_role
from accounts.forms.actors import ServiceAccountTokenForm
from accounts.models import Account, Actor, AuthIdentity, Token
from accounts.selectors.actors import actor_get
from accounts.selectors.identities import identity_list_for_actor
from accounts.selectors.tokens import token_get
from accounts.services.actors import actor_delete, actor_disable, actor_enable
from accounts.services.tokens import IssuedToken
from accounts.services.tokens_admin import token_delete, tokens_delete_for_actor
from firezone.errors import NotFound
from firezone.templatetags.portal import relative_text
from firezone.web.client_os import os_of
from firezone.web.edit import edit_page
from firezone.web.events import Handler
from firezone.web.pages import account_url, redirect_error, redirect_info
from firezone.web.request import PortalRequest
from gateways.presence import list_presences_sync

logger = logging.getLogger(__name__)

TYPE_LABELS: dict[str, str] = {
    Actor.Type.ACCOUNT_USER: "User",
    Actor.Type.ACCOUNT_ADMIN_USER: "User",
    Actor.Type.SERVICE_ACCOUNT: "Service Account",
    Actor.Type.API_CLIENT: "API Client",
}

MSG_TOKEN_REVOKED = "Token was revoked."
MSG_SYNCED_DELETE = "Synced actors can only be deleted once they have no identities left."


# --- shared helpers ------------------------------------------------------------------------------


def actor_url(account: Account, actor: Actor | Any) -> str:
    return account_url(account, "actor", id=getattr(actor, "pk", actor))


def crumbs(account: Account, *rest: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Actors", account_url(account, "actors")), *rest]


def grantable(request: PortalRequest) -> list[str]:
    return [t for t in Actor.USER_TYPES if can_grant_role(request.subject, t)]


def decorate_clients(clients: Iterable[Any], online: set[str]) -> None:
    for client in clients:
        client.online = str(client.pk) in online
        client.os = os_of(client.last_seen_user_agent)
        client.last_started = relative_text(client.last_seen_at)


def online_ids(topic: str) -> set[str]:
    """Device ids present on a presence topic (Redis; an outage shows everyone offline)."""
    try:
        return set(list_presences_sync(topic))
    except Exception:
        logger.warning("presence of %s unavailable", topic, exc_info=True)
        return set()


def user_actor(request: PortalRequest, id: str) -> Actor:
    """A user or admin of the account (identities belong to users only)."""
    actor = actor_get(request.subject, actor_id=id)
    if not actor.is_user:
        raise NotFound()
    return actor


def managed_actor(request: PortalRequest, id: str) -> Actor:
    """An actor whose pages live under /actors (API clients have theirs under Settings)."""
    actor = actor_get(request.subject, actor_id=id)
    if actor.is_api_client:
        raise NotFound()
    return actor


def name_or_email(queryset: QuerySet[Actor], value: str) -> QuerySet[Actor]:
    """The "Name or Email" search of actor tables: the name or an identity's email/identifier."""
    identities = AuthIdentity.objects.filter(actor_id=OuterRef("pk")).filter(
        Q(email__icontains=value) | Q(provider_identifier__icontains=value)
    )
    return queryset.filter(Q(name__icontains=value) | Q(Exists(identities)))


# --- new token page ------------------------------------------------------------------------------


def new_token_page(
    request: PortalRequest,
    actor: Actor,
    form: ServiceAccountTokenForm,
    *,
    create: Callable[..., IssuedToken],
    template: str,
    context: dict[str, Any],
) -> HttpResponse:
    """The new token page of a service account or an API client: `create` issues the token
    named and dated on the form; it is shown once, in this response, never stored anywhere
    readable and never cached."""
    page = {**context, "actor": actor, "token": None}

    def save(form: ServiceAccountTokenForm) -> None:
        issued = create(
            subject=request.subject,
            actor=actor,
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
        )
        page["token"] = issued.encoded

    return edit_page(request, form, template=template, context=page, save=save, secret=True)


# --- events --------------------------------------------------------------------------------------


def event_token(request: PortalRequest, actor: Actor) -> Token:
    """The token an event names (`token_id`): one of the page's actor, else the standard 404."""
    token = token_get(request.subject, token_id=request.POST.get("token_id"))
    if token.actor_id != actor.pk:
        raise NotFound()
    return token


def actor_events(
    request: PortalRequest, actor: Actor, *, here: str, gone: str, noun: str
) -> dict[str, Handler]:
    """The events of an actor's page (firezone.web.events): disable, enable, delete (then to
    `gone`), revoke_token and revoke_all; the flashes name the actor `noun` ("Actor")."""
    subject = request.subject

    def disable() -> HttpResponse:
        actor_disable(subject=subject, actor=actor)
        return redirect_info(request, here, f"{noun} was disabled.")

    def enable() -> HttpResponse:
        actor_enable(subject=subject, actor=actor)
        return redirect_info(request, here, f"{noun} was enabled.")

    def delete() -> HttpResponse:
        # Synced actors come back with the next sync while they still have identities.
        if actor.is_synced and identity_list_for_actor(subject, actor=actor).exists():
            return redirect_error(request, here, MSG_SYNCED_DELETE)
        actor_delete(subject=subject, actor=actor)
        return HttpResponseRedirect(gone)

    def revoke_token() -> HttpResponse:
        token_delete(subject=subject, token=event_token(request, actor))
        return redirect_info(request, here, MSG_TOKEN_REVOKED)

    def revoke_all() -> HttpResponse:
        count = tokens_delete_for_actor(subject=subject, actor=actor)
        return redirect_info(request, here, f"{count} token(s) were revoked.")

    return {
        "disable": disable,
        "enable": enable,
        "delete": delete,
        "revoke_token": revoke_token,
        "revoke_all": revoke_all,
    }
