"""Client queries (domain.md §2.8, §3.3): all clients with `client:manage`, else own clients."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject
from accounts.models import Token
from accounts.selectors.scopes import account_or_own
from accounts.validation import is_uuid
from firezone.errors import NotFound
from firezone.lookup import get_or_not_found
from gateways.models import Client


def _scoped(subject: Subject) -> QuerySet[Client]:
    return account_or_own(
        subject, Client.objects.all(), manage=P.CLIENT_MANAGE, manage_own=P.CLIENT_MANAGE_OWN
    )


def client_get(subject: Subject, *, client_id: Any) -> Client:
    return get_or_not_found(_scoped(subject).select_related("actor", "identity"), client_id)


def client_list(subject: Subject) -> QuerySet[Client]:
    """Most recently seen first."""
    return _scoped(subject).select_related("actor").order_by("-last_seen_at", "-id")


def client_list_for_actor(subject: Subject, *, actor_id: Any) -> QuerySet[Client]:
    if actor_id is None or not is_uuid(str(actor_id)):
        return Client.objects.none()
    return client_list(subject).filter(actor_id=actor_id)


def client_sign_in_token(subject: Subject, *, client: Client, token_id: Any) -> Token | None:
    """The token a connected client signed in with (named by its presence meta), with its
    identity and provider; None when it is gone or is not the client owner's."""
    tokens = account_or_own(
        subject,
        Token.objects.select_related("identity__provider"),
        manage=P.TOKEN_MANAGE,
        manage_own=P.TOKEN_MANAGE_OWN,
    )
    try:
        return get_or_not_found(tokens, token_id, actor_id=client.actor_id)
    except NotFound:
        return None
