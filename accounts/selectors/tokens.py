"""Token reads (domain.md §3.3 "Tokens", §3.5): `token:manage` sees the account's tokens,
`token:manage_own` the subject's own. Newest first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Actor, Token
from accounts.providers import OIDC_ADAPTERS
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


# Browser sessions the refresh job extends (billing_sync_jobs.md §2.14): those expiring in
# (now + 5 s, now + 15 min). Closer than 5 s they are left to expire.
REFRESH_WINDOW = (timedelta(seconds=5), timedelta(minutes=15))


def browser_tokens_due_for_refresh(*, now: datetime) -> dict[Any, list[Any]]:
    """Identity id → ids of its browser tokens due for a refresh, for identities of enabled
    OIDC-family providers with an enabled actor (the others cannot be refreshed: e-mail and
    userpass sessions simply expire). Oldest expiry first."""
    start, end = REFRESH_WINDOW
    rows = (
        Token.objects.filter(
            type=Token.Type.BROWSER,
            expires_at__gt=now + start,
            expires_at__lt=now + end,
            identity__isnull=False,
            identity__provider__adapter__in=OIDC_ADAPTERS,
            identity__provider__disabled_at__isnull=True,
            identity__actor__disabled_at__isnull=True,
        )
        .order_by("expires_at", "id")
        .values_list("identity_id", "id")
    )
    due: dict[Any, list[Any]] = {}
    for identity_id, token_id in rows:
        due.setdefault(identity_id, []).append(token_id)
    return due
