"""Token rows: issue, use (verify), and the subject a token authenticates (domain.md §2.7).

`accounts.tokens` is the pure part (secrets, hashing, the encoded string); this module is the one
place that touches token rows for authentication. Permission-checked issuing for admins
(service-account, API-client, site and relay tokens) builds on `token_create`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts import tokens
from accounts.auth import Context, Subject, trail_for
from accounts.models import Account, Actor, AuthIdentity, Token
from firezone import changes
from firezone.errors import Unauthorized, ValidationFailed


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
# expires the token even when it already had an expiry.
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


def token_use(encoded: str, *, context: Context) -> Token:
    """Verify a token string for `context.type` and return its row, or raise Unauthorized.

    The attempt is spent in its own committed statement *before* the secret is compared, so a
    wrong secret still counts; do not call this inside a transaction you may roll back.
    """
    decoded = tokens.decode(encoded, token_type=context.type)
    if decoded is None:
        raise invalid_token()
    with connection.cursor() as cursor:
        cursor.execute(
            _USE_SQL,
            [str(decoded.token_id), decoded.account_id and str(decoded.account_id), context.type],
        )
        found = cursor.fetchone()
    if found is None:
        raise invalid_token()
    token = Token.objects.filter(pk=found[0]).first()
    if token is None or not tokens.verify(decoded, token.secret_hash, token.secret_salt):
        raise invalid_token()
    _touch(token, context)
    return token


def _last_seen(context: Context) -> dict[str, Any]:
    return {
        "last_seen_user_agent": (context.user_agent or "")[:255] or None,
        "last_seen_remote_ip": context.remote_ip,
        "last_seen_remote_ip_location_region": context.remote_ip_location_region,
        "last_seen_remote_ip_location_city": context.remote_ip_location_city,
        "last_seen_remote_ip_location_lat": context.remote_ip_location_lat,
        "last_seen_remote_ip_location_lon": context.remote_ip_location_lon,
        "last_seen_at": timezone.now(),
    }


def _touch(row: Token | AuthIdentity, context: Context) -> None:
    values = _last_seen(context)
    type(row).objects.filter(pk=row.pk).update(**values)
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


def subject_for_token(token: Token, *, context: Context) -> Subject:
    """The subject a browser, client or api_client token authenticates (§2.7 "Subject building")."""
    if token.type not in (Token.Type.BROWSER, Token.Type.CLIENT, Token.Type.API_CLIENT):
        raise invalid_token()
    actor = (
        Actor.objects.select_related("account")
        .filter(pk=token.actor_id, account_id=token.account_id, disabled_at__isnull=True)
        .first()
    )
    if actor is None:
        raise invalid_token()
    identity = None
    if actor.type not in (Actor.Type.SERVICE_ACCOUNT, Actor.Type.API_CLIENT):
        identity = active_identity(token.identity_id, token.account_id)
        if identity is None:
            raise invalid_token()
        _touch(identity, context)
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
    """Token string → subject, for browser, client and api_client contexts."""
    return subject_for_token(token_use(encoded, context=context), context=context)
