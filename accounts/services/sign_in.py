"""Sign-in core (domain.md §2.6), system path: turn a proven identity into a session token.

The portal's pages and the client sign-in build on these; they look up the account/provider,
rate-limit, send emails and answer unknown emails with a fake fragment (no user enumeration).

Email one-time codes (portal.md §3.6, hardened as asked by issue 5 / OWASP ASVS 2.7):

* A request issues an email token whose nonce is a 5-character code (mailed) and whose signed
  fragment stays in the requesting browser; it lives **10 minutes** and allows **3 attempts**
  (`accounts.tokens.EMAIL_TOKEN_LIFETIME` / `EMAIL_TOKEN_ATTEMPTS`). Earlier codes of the
  identity stop working.
* The code is checked twice, and both must pass:
  1. `argon2id(code)` is kept in the identity's `provider_state["code_hash"]` next to the id of
     the token it belongs to (`last_created_token_id`). It is verified first, with argon2-cffi's
     constant-time verify, *before* the token row is used. An unknown email runs the same
     verify against a dummy hash (`email_token_verify_unknown`), so timing does not tell
     registered emails apart.
  2. The token row's `sha3_256(code + fragment + salt)` (`token_use`), which also needs the
     browser's fragment: the email alone or the browser alone cannot sign in.
* Every attempt costs exactly one of the token's attempts, in one committed UPDATE: a wrong code
  burns one without ever reaching `token_use`; a right one is spent by `token_use`. After three
  attempts the token is dead even for the right code and a fresh code is needed. The stored hash
  is secret data: `provider_state` is redacted from the change log (its keys match "hash").
* The portal adds rate limits (per email and per IP) on top, checked before a token is rotated.
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
import uuid
from datetime import datetime
from typing import Any, NoReturn

from argon2.exceptions import InvalidHashError, VerificationError
from django.db import transaction
from django.db.models import Case, F, When
from django.db.models.functions import Now
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


def email_identity_find(*, provider: AuthProvider, email: str) -> AuthIdentity | None:
    """System path: the active identity of an enabled email provider for `email` (the
    identifier is case-insensitive), or None."""
    if not isinstance(email, str) or not email.strip():
        return None
    return (
        AuthIdentity.objects.select_related("actor", "provider", "account")
        .filter(
            provider_id=provider.pk,
            account_id=provider.account_id,
            provider__adapter=AuthProvider.Adapter.EMAIL,
            provider__disabled_at__isnull=True,
            actor__disabled_at__isnull=True,
            provider_identifier=email.strip(),
        )
        .first()
    )


def email_fake_fragment(*, account_id: Any) -> str:
    """A well-formed browser fragment for an email that gets no code (unknown or rate-limited),
    indistinguishable from a real one; it matches no token."""
    return tokens.encode(
        uuid.uuid4(),
        "",
        tokens.generate_fragment(tokens.TokenType.EMAIL),
        token_type=tokens.TokenType.EMAIL,
        account_id=account_id,
    )


@transaction.atomic
def email_token_request(*, identity: AuthIdentity, context: Context) -> tuple[Token, str, str]:
    """Issue a new email sign-in token for an (active) email identity.

    Returns the token, the 5-character code to email, and the encoded fragment for the
    requesting browser to keep: the secret is `code + encoded_fragment`. Earlier email tokens
    of the identity stop working. argon2id(code) is kept in `provider_state["code_hash"]`.
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
        "code_hash": password_hasher.hash(code),
    }
    identity.save(update_fields=["provider_state"])
    changes.updated(old, identity)
    return issued.token, code, issued.encoded[len(code) :]


def email_token_verify(*, identity: AuthIdentity, secret: str, context: Context) -> AuthIdentity:
    """Check `code + encoded_fragment` for the identity; on success its email tokens are
    deleted and its bookkeeping reset. The code is case-insensitive. Every attempt costs one of
    the token's 3 attempts (see the module docstring). Raises Unauthorized.

    Not atomic on purpose: the attempt must stay spent when verification fails.
    """
    identity = _active(identity, AuthProvider.Adapter.EMAIL)
    if not isinstance(secret, str):
        raise invalid_token()
    code, dot, rest = secret.partition(".")
    code = code.lower()
    decoded = tokens.decode(code + dot + rest, token_type=Token.Type.EMAIL)
    state = identity.provider_state or {}
    if (
        decoded is None
        or decoded.account_id != identity.account_id
        or str(decoded.token_id) != state.get("last_created_token_id")
    ):
        # Not this identity's current token: nothing of it to spend. Same cost as a real check.
        _code_matches(None, code)
        raise invalid_token()
    if not _code_matches(state.get("code_hash"), code):
        _burn_attempt(decoded.token_id)
        raise invalid_token()
    email_context = dataclasses.replace(context, type=Token.Type.EMAIL)
    token = token_use(code + dot + rest, context=email_context)
    if token.identity_id != identity.pk:
        raise invalid_token()
    return _email_signed_in(identity)


def email_token_verify_unknown(*, secret: str) -> NoReturn:
    """The verification of a code for an email with no identity: the same argon2 work as a
    real one, then Unauthorized (no account enumeration through timing)."""
    code = secret.partition(".")[0].lower() if isinstance(secret, str) else ""
    _code_matches(None, code)
    raise invalid_token()


def _code_matches(code_hash: Any, code: str) -> bool:
    # argon2-cffi compares in constant time; a missing hash costs the same through a dummy.
    if not isinstance(code_hash, str) or not code_hash:
        _password_matches(_dummy_hash(), code)
        return False
    return _password_matches(code_hash, code)


def _burn_attempt(token_id: Any) -> None:
    """Spend one attempt of an email token (expiring it with the last one), committed at once."""
    Token.objects.filter(pk=token_id, type=Token.Type.EMAIL, remaining_attempts__gt=0).update(
        remaining_attempts=F("remaining_attempts") - 1,
        expires_at=Case(
            When(remaining_attempts__lte=1, then=Now()),
            default=F("expires_at"),
        ),
    )


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


def userpass_password_check_dummy(*, password: str) -> None:
    """The cost of a password check without an identity (rate-limited attempts look and take
    the same as wrong passwords)."""
    _password_matches(_dummy_hash(), password if isinstance(password, str) else "")


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
