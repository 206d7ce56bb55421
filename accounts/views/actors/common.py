"""Shared by the actor pages (portal.md §4.5): labels, URLs and breadcrumbs, the actor lookups
of the pages and the client decorations (OS icon, presence)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from accounts.auth import can_grant_role
from accounts.models import Account, Actor, ActorGroup
from accounts.selectors.actors import actor_get
from firezone.errors import NotFound
from firezone.templatetags.portal import relative_text
from firezone.web.client_os import os_of
from firezone.web.pages import account_url
from firezone.web.request import PortalRequest
from gateways.presence import list_presences_sync

logger = logging.getLogger(__name__)

TYPE_LABELS: dict[str, str] = {
    Actor.Type.ACCOUNT_USER: "User",
    Actor.Type.ACCOUNT_ADMIN_USER: "User",
    Actor.Type.SERVICE_ACCOUNT: "Service Account",
    Actor.Type.API_CLIENT: "API Client",
}


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


def group_name_filter(queryset: QuerySet[ActorGroup], value: str) -> QuerySet[ActorGroup]:
    return queryset.filter(name__icontains=value)
