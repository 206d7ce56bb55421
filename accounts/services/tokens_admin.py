"""Token management for admins and users (domain.md §2.7 "Management", "Who may create which
token"): service-account and API-client tokens, renaming, expiry changes and deletion.

Deleting a token is a hard delete through `changes.delete`, which also closes every socket
authenticated with it. Site and relay tokens are issued by the gateways app.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import tokens
from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Actor, Token
from accounts.services.tokens import IssuedToken, token_create
from firezone import changes
from firezone.errors import ValidationFailed
from firezone.lookup import get_or_not_found

MSG_FUTURE = "must be in the future"


def _admin_token(
    *,
    subject: Subject,
    actor: Actor,
    actor_type: str,
    token_type: str,
    name: str | None,
    expires_at: datetime | None,
) -> IssuedToken:
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id)
    errors: dict[str, list[str]] = {}
    if actor.type != actor_type:
        errors["actor"] = [f"must be of type {actor_type}"]
    elif actor.is_disabled:
        errors["actor"] = ["is disabled"]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = [MSG_FUTURE]
    if errors:
        raise ValidationFailed(errors)
    if expires_at is None:
        expires_at = tokens.default_expiry(
            token_type, timezone.now(), service_account=actor_type == Actor.Type.SERVICE_ACCOUNT
        )
    return token_create(
        type=token_type,
        account=subject.account,
        actor=actor,
        name=name,
        expires_at=expires_at,
        context=subject.context,
        subject=subject,
    )


@transaction.atomic
def service_account_token_create(
    *,
    subject: Subject,
    actor: Actor,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """A headless-client token (`client` type, empty nonce) for a service account."""
    ensure_permissions(subject, P.AUTH_MANAGE_SERVICE_ACCOUNTS)
    return _admin_token(
        subject=subject,
        actor=actor,
        actor_type=Actor.Type.SERVICE_ACCOUNT,
        token_type=Token.Type.CLIENT,
        name=name,
        expires_at=expires_at,
    )


@transaction.atomic
def api_client_token_create(
    *,
    subject: Subject,
    actor: Actor,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """A REST API bearer token for an `api_client` actor (admins only)."""
    ensure_permissions(subject, P.AUTH_MANAGE_API_CLIENTS)
    return _admin_token(
        subject=subject,
        actor=actor,
        actor_type=Actor.Type.API_CLIENT,
        token_type=Token.Type.API_CLIENT,
        name=name,
        expires_at=expires_at,
    )


def _token_for_change(subject: Subject, token: Token | Any) -> Token:
    """Object check (§3.4): one's own token needs `token:manage_own`, others `token:manage`."""
    ensure_permissions(subject, one_of=(P.TOKEN_MANAGE, P.TOKEN_MANAGE_OWN))
    token = get_or_not_found(Token, token, account_id=subject.account_id, for_update=True)
    if token.actor_id is not None and token.actor_id == subject.actor_id:
        ensure_permissions(subject, P.TOKEN_MANAGE_OWN)
    else:
        ensure_permissions(subject, P.TOKEN_MANAGE)
    return token


@transaction.atomic
def token_delete(*, subject: Subject, token: Token) -> Token:
    """Hard-delete a token: its sessions are disconnected and its flows removed."""
    token = _token_for_change(subject, token)
    changes.delete(token, subject=subject)
    return token


@transaction.atomic
def token_delete_for_subject(*, subject: Subject) -> int:
    """Sign-out: delete the token the subject authenticated with (0 if already gone)."""
    recorded = changes.delete(
        Token.objects.filter(pk=subject.token_id, account_id=subject.account_id),
        subject=subject,
    )
    return sum(1 for c in recorded if c.table == "tokens")


def _delete_all(subject: Subject, condition: Q) -> int:
    recorded = changes.delete(
        Token.objects.filter(condition, account_id=subject.account_id), subject=subject
    )
    return sum(1 for c in recorded if c.table == "tokens")


@transaction.atomic
def tokens_delete_for_actor(*, subject: Subject, actor: Actor) -> int:
    """Delete every token of an actor (sessions, clients, API tokens); returns how many."""
    ensure_permissions(subject, P.TOKEN_MANAGE)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id)
    return _delete_all(subject, Q(actor=actor))


@transaction.atomic
def tokens_delete_expired(*, now: datetime | None = None, limit: int = 1000) -> int:
    """System job (protocol.md §5.7, §6.1; every 5 minutes): hard-delete up to `limit` tokens
    whose expiry passed, so their sockets are closed and their flows deleted (gateways revoke
    them). Returns how many tokens were deleted; the caller repeats while it gets `limit`."""
    expired = list(
        Token.objects.filter(expires_at__lte=now or timezone.now())
        .order_by("expires_at", "id")
        .select_for_update(skip_locked=True)[:limit]
    )
    recorded = changes.delete(expired)
    return sum(1 for c in recorded if c.table == "tokens")
