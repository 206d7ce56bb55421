"""Token reads (domain.md §3.3 "Tokens", §3.5): `token:manage` sees the account's tokens,
`token:manage_own` the subject's own. Newest first."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Actor, Token
from accounts.selectors.scopes import account_or_own
from firezone.lookup import get_or_not_found


def _scoped(subject: Subject) -> QuerySet[Token]:
    return account_or_own(
        subject, Token.objects.all(), manage=P.TOKEN_MANAGE, manage_own=P.TOKEN_MANAGE_OWN
    )


def token_get(subject: Subject, *, token_id: Any) -> Token:
    """A token (expired ones included) the subject may manage."""
    return get_or_not_found(_scoped(subject), token_id, account_id=subject.account_id)


def tokens_list_for_actor(subject: Subject, *, actor: Actor | Any) -> QuerySet[Token]:
    """All tokens of one actor of the account."""
    ensure_permissions(subject, P.TOKEN_MANAGE)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id)
    return Token.objects.filter(account_id=subject.account_id, actor=actor).order_by(
        "-inserted_at", "-id"
    )
