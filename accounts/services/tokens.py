"""Token rows: issue, use (verify), and the subject a token authenticates (domain.md §2.7).

`accounts.tokens` is the pure part (secrets, hashing, the encoded string); this module is the one
place that touches token rows for authentication. Permission-checked issuing for admins
(service-account, API-client, site and relay tokens) builds on `token_create`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.mixins import FieldCacheMixin
from django.db.models.functions import Now
from django.utils import timezone

from accounts import tokens
from accounts.auth import Context, Subject, trail_for
from accounts.models import Account, Actor, AuthIdentity, Token
from firezone import changes
from firezone.errors import Unauthorized, ValidationFailed
from firezone.precompiled import Precompiled


@dataclass(frozen=True)
class IssuedToken:
    """A new token row and the full token string for its holder (shown once, never stored)."""

    token: Token
    encoded: str


def invalid_token() -> Unauthorized:
    return Unauthorized("The token is invalid or expired.", reason="invalid_or_expired_token")


@transaction.atomic
def token_create(
    *,
    type: str,
    account: Account | None,
    actor: Actor | None = None,
    identity: AuthIdentity | None = None,
    gateway_group: Any = None,
    relay_group: Any = None,
    name: str | None = None,
    expires_at: datetime | None = None,
    nonce: str | None = None,
    context: Context | None = None,
    subject: Subject | None = None,
) -> IssuedToken:
    """Insert a token row and return it with its encoded string. No permission check: callers
    (sign-in, admin token services, the seed) decide who may issue what."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed({"expires_at": ["must be in the future"]})
    if name is not None:
        name = name.strip() or None
        if name is not None and len(name) > 255:
            raise ValidationFailed({"name": ["should be at most 255 character(s)"]})
    try:
        secrets = tokens.generate_secrets(type, nonce=nonce)
    except ValueError as exc:
        raise ValidationFailed({"secret_nonce": [str(exc)]}) from exc
    context = context or Context()
    token = Token.objects.create(
        type=type,
        name=name,
        account=account,
        actor=actor,
        identity=identity,
        gateway_group=gateway_group,
        relay_group=relay_group,
        secret_salt=secrets.salt,
        secret_hash=secrets.hash,
        remaining_attempts=tokens.default_remaining_attempts(type),
        expires_at=expires_at,
        created_by_user_agent=context.user_agent,
        created_by_remote_ip=context.remote_ip,
        **trail_for(subject),
    )
    changes.inserted(token, subject=subject)
    signed = tokens.encode(
        token.id,
        secrets.nonce,
        secrets.fragment,
        token_type=type,
        account_id=account.pk if account is not None else None,
    )
    return IssuedToken(token=token, encoded=signed)


# One statement finds a usable token and spends an attempt (domain.md §2.7 step 3, with the
# §8.3 fix): tokens whose attempts are used up are refused, and spending the last attempt
# expires the token even when it already had an expiry. Only for tokens that count attempts
# (email codes); the others have nothing to spend (see `_usable`).
_USE_SQL = """
UPDATE accounts_token
SET remaining_attempts = remaining_attempts - 1,
    expires_at = CASE WHEN remaining_attempts = 1 THEN now() ELSE expires_at END
WHERE id = %s
  AND account_id IS NOT DISTINCT FROM %s
  AND type = %s
  AND (expires_at IS NULL OR expires_at > now())
  AND (remaining_attempts IS NULL OR remaining_attempts > 0)
RETURNING id
"""

# What `authenticate` needs besides the token row, loaded with it in one query: the actor and its
# account, the identity with its actor and provider (§2.7 "Subject building").
_SUBJECT_RELATED = ("actor__account", "identity__actor", "identity__provider")


_USABLE: dict[tuple[tuple[str, ...], bool], Precompiled[Token]] = {}


def _usable_row(
    decoded: tokens.DecodedToken, token_type: str, related: tuple[str, ...]
) -> Token | None:
    """`_usable(...).select_related(*related).first()`, compiled once per shape (the hot path
    of every device connect)."""
    key = (related, decoded.account_id is None)
    compiled = _USABLE.get(key)
    if compiled is None:

        def build(token_id: Any, token_type: str, account_id: Any) -> QuerySet[Token]:
            shape = tokens.DecodedToken(
                nonce="", account_id=account_id, token_id=token_id, fragment=""
            )
            rows = _usable(shape, token_type).select_related(*related)
            return rows.order_by("pk")[:1]

        account_sentinel = None if decoded.account_id is None else uuid.UUID(int=2)
        compiled = _USABLE[key] = Precompiled(
            build, uuid.UUID(int=1), "token-type-sentinel", account_sentinel
        )
    return compiled.first(decoded.token_id, token_type, decoded.account_id)


def _usable(decoded: tokens.DecodedToken, token_type: str) -> QuerySet[Token]:
    """The token row the decoded string names, if it is of `token_type` and not expired."""
    rows = Token.objects.filter(pk=decoded.token_id, type=token_type).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=Now())
    )
    if decoded.account_id is None:
        return rows.filter(account_id__isnull=True)
    return rows.filter(account_id=decoded.account_id)


def _spend_attempt(decoded: tokens.DecodedToken, token_type: str) -> bool:
    """Spend one attempt of a token that counts them (committed before any comparison)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _USE_SQL,
            [str(decoded.token_id), decoded.account_id and str(decoded.account_id), token_type],
        )
        return cursor.fetchone() is not None


def _verified(encoded: str, context: Context, related: Iterable[str] = ()) -> Token:
    """The token row of a valid token string for `context.type` (with `related` loaded), or
    Unauthorized. Does not record the use."""
    decoded = tokens.decode(encoded, token_type=context.type)
    if decoded is None:
        raise invalid_token()
    related = tuple(related)
    token: Token | None = None
    counts_attempts = tokens.default_remaining_attempts(context.type) is not None
    if not counts_attempts:
        # Nothing to spend: one SELECT with the same guards, the secret compared in Python.
        token = _usable_row(decoded, context.type, related)
        counts_attempts = token is not None and token.remaining_attempts is not None
    if counts_attempts:
        # Tokens that count attempts: spend one first, so a wrong secret still counts.
        token = None
        if _spend_attempt(decoded, context.type):
            token = Token.objects.select_related(*related).filter(pk=decoded.token_id).first()
    if token is None or not tokens.verify(decoded, token.secret_hash, token.secret_salt):
        raise invalid_token()
    return token


def token_use(encoded: str, *, context: Context, related: Iterable[str] = ()) -> Token:
    """Verify a token string for `context.type` and return its row, or raise Unauthorized.
    `related` names relations to load with the row (`select_related`).

    Tokens that count attempts (email codes) have the attempt spent in its own committed
    statement *before* the secret is compared, so a wrong secret still counts; do not call this
    inside a transaction you may roll back. Other tokens cost one SELECT and one UPDATE (the
    last-seen columns).
    """
    token = _verified(encoded, context, related)
    _touch([token], context)
    return token


def _last_seen(context: Context) -> dict[str, Any]:
    return {
        "last_seen_user_agent": (context.user_agent or "")[:255] or None,
        "last_seen_remote_ip": context.remote_ip,
        **context.last_seen_location(),
        "last_seen_at": timezone.now(),
    }


def _touch(rows: Sequence[Token | AuthIdentity], context: Context) -> None:
    """Store the last-seen columns on `rows` (one statement for all of them)."""
    values = _last_seen(context)
    if len(rows) == 1:
        type(rows[0]).objects.filter(pk=rows[0].pk).update(**values)
    elif rows:
        # One UPDATE per row, chained as data-modifying CTEs: a single round trip.
        assignments = ", ".join(f"{column} = %({column})s" for column in values)
        statements = []
        for i, row in enumerate(rows):
            table = type(row)._meta.db_table  # our identifiers; the values are parameters
            statements.append(f"UPDATE {table} SET {assignments} WHERE id = %(id_{i})s")  # noqa: S608
        *first, last = statements
        ctes = ", ".join(f"touched_{i} AS ({sql})" for i, sql in enumerate(first))
        params = {**values, **{f"id_{i}": row.pk for i, row in enumerate(rows)}}
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {ctes} {last}", params)
    for row in rows:
        for key, value in values.items():
            setattr(row, key, value)


def active_identity(identity_id: Any, account_id: Any) -> AuthIdentity | None:
    """An identity usable for sign-in: its actor and provider are enabled (§2.5)."""
    return (
        AuthIdentity.objects.select_related("actor", "provider", "account")
        .filter(
            pk=identity_id,
            account_id=account_id,
            actor__disabled_at__isnull=True,
            provider__disabled_at__isnull=True,
        )
        .first()
    )


def _loaded(token: Token, name: str) -> bool:
    field = Token._meta.get_field(name)  # a foreign key: it caches the row it points at
    return isinstance(field, FieldCacheMixin) and field.is_cached(token)


def _active_actor(token: Token) -> Actor | None:
    """The token's actor with its account, if it is enabled and of the token's account."""
    if token.actor_id is None or token.account_id is None:
        return None
    if not _loaded(token, "actor"):
        return (
            Actor.objects.select_related("account")
            .filter(pk=token.actor_id, account_id=token.account_id, disabled_at__isnull=True)
            .first()
        )
    actor = token.actor
    if actor is None or actor.account_id != token.account_id or actor.disabled_at is not None:
        return None
    return actor


def _active_identity(token: Token, actor: Actor) -> AuthIdentity | None:
    """`active_identity(token.identity_id, token.account_id)`, from the row loaded with the
    token when it was."""
    if not _loaded(token, "identity"):
        return active_identity(token.identity_id, token.account_id)
    identity = token.identity
    if (
        identity is None
        or identity.account_id != token.account_id
        or identity.actor.disabled_at is not None
        or identity.provider.disabled_at is not None
    ):
        return None
    identity.account = actor.account  # the same row (both are the token's account)
    return identity


def _subject(token: Token, context: Context, *, touched: list[Token]) -> Subject:
    """Subject building; `touched` are rows whose last-seen columns are still to be stored
    (the token, when `authenticate` defers it): stored with the identity's, in one statement."""
    if token.type not in (Token.Type.BROWSER, Token.Type.CLIENT, Token.Type.API_CLIENT):
        _touch(touched, context)
        raise invalid_token()
    actor = _active_actor(token)
    identity = None
    if actor is not None and actor.type not in (Actor.Type.SERVICE_ACCOUNT, Actor.Type.API_CLIENT):
        identity = _active_identity(token, actor)
        if identity is None:
            actor = None
    if actor is None:
        _touch(touched, context)
        raise invalid_token()
    _touch([*touched, identity] if identity is not None else touched, context)
    if token.type == Token.Type.BROWSER and token.created_by_user_agent != context.user_agent:
        raise Unauthorized("The session belongs to another browser.", reason="invalid_user_agent")
    return Subject.build(
        actor=actor,
        identity=identity,
        token_id=token.pk,
        expires_at=token.expires_at,
        context=context,
    )


def authenticate(encoded: str, *, context: Context) -> Subject:
    """Token string → subject, for browser, client and api_client contexts.

    For tokens without attempts (all of these) this is two statements: the token row with its
    actor, account, identity and provider, then the last-seen update of token and identity.
    """
    token = _verified(encoded, context, _SUBJECT_RELATED)
    return _subject(token, context, touched=[token])
