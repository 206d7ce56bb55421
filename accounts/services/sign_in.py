"""Sign-in core (domain.md §2.6), system path: turn a proven identity into a session token.

The portal's pages and the client sign-in build on these; they look up the account/provider,
rate-limit, send emails and answer unknown emails with a fake fragment (no user enumeration).
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
from datetime import datetime
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError
from django.db import transaction
from django.utils import timezone

from accounts import tokens
from accounts.auth import Context, Subject
from accounts.models import AuthIdentity, AuthProvider, Token
from accounts.services.identities import password_hasher
from accounts.services.tokens import (
    IssuedToken,
    active_identity,
    invalid_token,
    token_create,
    token_use,
)
from accounts.validation import is_uuid
from firezone import changes
from firezone.errors import Unauthorized

SESSION_TYPES = (Token.Type.BROWSER, Token.Type.CLIENT)


def _unauthorized() -> Unauthorized:
    return Unauthorized("You could not be signed in.", reason="unauthorized")


def _active(identity: AuthIdentity, adapter: str | None = None) -> AuthIdentity:
    found = active_identity(identity.pk, identity.account_id)
    if found is None or (adapter is not None and found.provider.adapter != adapter):
        raise _unauthorized()
    return found


# --- email one-time code -------------------------------------------------------------------------


@transaction.atomic
def email_token_request(*, identity: AuthIdentity, context: Context) -> tuple[Token, str, str]:
    """Issue a new email sign-in token for an (active) email identity.

    Returns the token, the 5-character code to email, and the encoded fragment for the
    requesting browser to keep: the secret is `code + encoded_fragment`. Earlier email tokens
    of the identity stop working.
    """
    identity = _active(identity, AuthProvider.Adapter.EMAIL)
    identity = AuthIdentity.objects.select_for_update().get(pk=identity.pk)
    changes.delete(Token.objects.filter(identity=identity, type=Token.Type.EMAIL))
    code = tokens.generate_email_code()
    now = timezone.now()
    issued = token_create(
        type=Token.Type.EMAIL,
        account=identity.account,
        actor=identity.actor,
        identity=identity,
        nonce=code,
        expires_at=tokens.default_expiry(Token.Type.EMAIL, now),
        context=context,
    )
    old = changes.row_image(identity)
    sequence = (identity.provider_state or {}).get("request_sequence_number") or 0
    identity.provider_state = {
        "last_created_token_id": str(issued.token.pk),
        "token_created_at": now.isoformat(),
        "request_sequence_number": sequence + 1,
    }
    identity.save(update_fields=["provider_state"])
    changes.updated(old, identity)
    return issued.token, code, issued.encoded[len(code) :]


def email_token_verify(*, identity: AuthIdentity, secret: str, context: Context) -> AuthIdentity:
    """Check `code + encoded_fragment` for the identity; on success its email tokens are
    deleted and its bookkeeping reset. Every attempt counts: after 5 wrong codes the token is
    dead even for the right one (§8.3 fix). Raises Unauthorized.

    Not atomic on purpose: the attempt must stay spent when verification fails.
    """
    identity = _active(identity, AuthProvider.Adapter.EMAIL)
    if not isinstance(secret, str):
        raise invalid_token()
    code, dot, rest = secret.partition(".")
    token = token_use(
        code.lower() + dot + rest, context=dataclasses.replace(context, type=Token.Type.EMAIL)
    )
    if token.identity_id != identity.pk:
        raise invalid_token()
    return _email_signed_in(identity)


@transaction.atomic
def _email_signed_in(identity: AuthIdentity) -> AuthIdentity:
    identity = AuthIdentity.objects.select_for_update().get(pk=identity.pk)
    old = changes.row_image(identity)
    identity.provider_state = {}
    identity.save(update_fields=["provider_state"])
    changes.updated(old, identity)
    changes.delete(Token.objects.filter(identity=identity, type=Token.Type.EMAIL))
    return identity


# --- username and password -----------------------------------------------------------------------


@functools.cache
def _dummy_hash() -> str:
    return password_hasher.hash(secrets.token_urlsafe(16))


def _password_matches(password_hash: Any, password: str) -> bool:
    try:
        return password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError, TypeError, ValueError):
        return False


def userpass_verify(*, provider: AuthProvider, identifier: str, password: str) -> AuthIdentity:
    """The active identity of an enabled userpass provider matching `identifier` (its id or,
    case-insensitively, its email) and `password`. Raises Unauthorized; an unknown identifier
    costs a hash verification too, so timing does not reveal which identities exist."""
    identity = None
    if isinstance(identifier, str) and identifier.strip() and isinstance(password, str):
        identifier = identifier.strip()
        lookup = {"pk": identifier} if is_uuid(identifier) else {"provider_identifier": identifier}
        identity = (
            AuthIdentity.objects.select_related("actor", "provider", "account")
            .filter(
                provider_id=provider.pk,
                provider__adapter=AuthProvider.Adapter.USERPASS,
                provider__disabled_at__isnull=True,
                actor__disabled_at__isnull=True,
                **lookup,
            )
            .first()
        )
    password_hash = (identity.provider_state or {}).get("password_hash") if identity else None
    if identity is None or not password_hash:
        _password_matches(_dummy_hash(), password if isinstance(password, str) else "")
        raise _unauthorized()
    if not _password_matches(password_hash, password):
        raise _unauthorized()
    return identity


# --- session tokens ------------------------------------------------------------------------------


@transaction.atomic
def session_token_create(
    *,
    identity: AuthIdentity,
    context: Context,
    nonce: str | None = None,
    idp_expires_at: datetime | None = None,
) -> IssuedToken:
    """The session token for a signed-in identity, of the context's type: `browser` (10 h,
    or the IdP's earlier expiry) or `client` (7 days; clients send their own nonce)."""
    if context.type not in SESSION_TYPES:
        raise _unauthorized()
    identity = _active(identity)
    expires_at = tokens.default_expiry(context.type, timezone.now(), idp_expires_at=idp_expires_at)
    if expires_at is None or expires_at <= timezone.now():
        raise _unauthorized()
    return token_create(
        type=context.type,
        account=identity.account,
        actor=identity.actor,
        identity=identity,
        nonce=nonce,
        expires_at=expires_at,
        context=context,
        subject=Subject.build(actor=identity.actor, identity=identity, context=context),
    )
