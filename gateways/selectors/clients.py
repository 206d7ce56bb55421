"""Client queries (domain.md §2.8, §3.3): all clients with `client:manage`, else own clients."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Token
from accounts.selectors.scopes import account_or_own
from accounts.validation import is_uuid
from firezone.errors import NotFound
from firezone.lookup import get_or_not_found
from firezone.peek import peek
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


def client_peek_by_actor(
    subject: Subject, *, actor_ids: list[Any], limit: int = 5
) -> dict[uuid.UUID, dict[str, Any]]:
    """For each actor id: `{"count": n, "items": [its `limit` most recently seen clients]}`,
    in one query whatever the number of actors."""
    ensure_permissions(subject, P.CLIENT_MANAGE)
    return peek(
        actor_ids,
        lambda keys: Client.objects.filter(
            account_id=subject.account_id, actor_id__in=keys
        ).order_by("actor_id", "-last_seen_at", "-id"),
        key="actor_id",
        limit=limit,
    )
