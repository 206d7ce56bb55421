"""Client queries (domain.md §2.8, §3.3): all clients with `client:manage`, else own clients."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.validation import is_uuid
from firezone.errors import NotFound
from gateways.models import Client


def _scoped(subject: Subject) -> QuerySet[Client]:
    ensure_permissions(subject, one_of=(P.CLIENT_MANAGE, P.CLIENT_MANAGE_OWN))
    queryset = Client.objects.filter(account_id=subject.account_id)
    if not subject.has(P.CLIENT_MANAGE):
        queryset = queryset.filter(actor_id=subject.actor_id)
    return queryset


def client_get(subject: Subject, *, client_id: Any) -> Client:
    if client_id is None or not is_uuid(str(client_id)):
        raise NotFound()
    client = _scoped(subject).select_related("actor", "identity").filter(pk=client_id).first()
    if client is None:
        raise NotFound()
    return client


def client_list(subject: Subject) -> QuerySet[Client]:
    """Most recently seen first."""
    return _scoped(subject).select_related("actor").order_by("-last_seen_at", "-id")


def client_list_for_actor(subject: Subject, *, actor_id: Any) -> QuerySet[Client]:
    if actor_id is None or not is_uuid(str(actor_id)):
        return Client.objects.none()
    return client_list(subject).filter(actor_id=actor_id)
