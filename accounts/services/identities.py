"""Identity writes (domain.md §2.5): an actor's login at one provider.

Per adapter: `email` identities are an email address (entered twice); `userpass` identities
carry an Argon2id hash in `provider_state.password_hash`, in the standard `$argon2id$` encoding
(argon2-cffi, not Django's prefixed hasher format, so hashes move between implementations);
OIDC-family identities may be pre-provisioned by email until the first sign-in rewrites them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher
from django.db import IntegrityError, transaction

from accounts.auth import PROVIDER_TRAIL, SYSTEM_TRAIL, P, Subject, ensure_permissions
from accounts.models import Actor, AuthIdentity, AuthProvider
from accounts.providers import MANUAL_IDENTITY_ADAPTERS
from firezone import changes
from firezone.errors import NotFound, Refused, ValidationFailed
from firezone.lookup import get_or_not_found

A = AuthProvider.Adapter
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9]+", re.ASCII)
EMAIL_MAX_LENGTH = 160
PASSWORD_MIN_BYTES = 12
PASSWORD_MAX_BYTES = 72

MSG_BLANK = "can't be blank"
MSG_EMAIL = "is an invalid email address"
MSG_EMAIL_MISMATCH = "email does not match"
MSG_PASSWORD_MISMATCH = "does not match confirmation"
MSG_TAKEN = "has already been taken"
MSG_NO_MANUAL_IDENTITIES = "does not take manually created identities"

password_hasher = PasswordHasher()


def is_email(value: str) -> bool:
    return len(value) <= EMAIL_MAX_LENGTH and EMAIL_RE.fullmatch(value) is not None


def email_errors(value: Any) -> list[str]:
    if not isinstance(value, str) or not value.strip():
        return [MSG_BLANK]
    return [] if is_email(value.strip()) else [MSG_EMAIL]


def password_errors(password: Any, confirmation: Any) -> dict[str, list[str]]:
    """Userpass rules: 12-72 *bytes* (Argon2 inputs are bytes), confirmed."""
    errors: dict[str, list[str]] = {}
    if not isinstance(password, str) or password == "":
        errors["password"] = [MSG_BLANK]
    else:
        size = len(password.encode("utf-8"))
        if size < PASSWORD_MIN_BYTES:
            errors["password"] = [f"should be at least {PASSWORD_MIN_BYTES} byte(s)"]
        elif size > PASSWORD_MAX_BYTES:
            errors["password"] = [f"should be at most {PASSWORD_MAX_BYTES} byte(s)"]
    if not isinstance(confirmation, str) or confirmation == "":
        errors["password_confirmation"] = [MSG_BLANK]
    elif confirmation != password:
        errors["password_confirmation"] = [MSG_PASSWORD_MISMATCH]
    return errors


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def _build(
    *,
    actor: Actor,
    provider: AuthProvider,
    provider_identifier: Any,
    email: Any,
    password: Any,
    password_confirmation: Any,
    provider_identifier_confirmation: Any,
    provider_state: Mapping[str, Any] | None,
    require_confirmation: bool,
) -> AuthIdentity:
    errors: dict[str, list[str]] = {}
    identifier = provider_identifier.strip() if isinstance(provider_identifier, str) else ""
    if not identifier:
        errors["provider_identifier"] = [MSG_BLANK]
    elif len(identifier) > 255:
        errors["provider_identifier"] = ["should be at most 255 character(s)"]
    clean_email = email.strip() if isinstance(email, str) and email.strip() else None
    state: dict[str, Any] = {}
    if provider.adapter in (A.EMAIL, A.USERPASS):
        if identifier and (messages := email_errors(identifier)):
            errors["provider_identifier"] = messages
        clean_email = clean_email or identifier or None
    if provider.adapter == A.EMAIL:
        confirmation = (
            provider_identifier_confirmation.strip()
            if isinstance(provider_identifier_confirmation, str)
            else None
        )
        if confirmation is None and require_confirmation:
            errors["provider_identifier_confirmation"] = [MSG_BLANK]
        elif confirmation is not None and confirmation.lower() != identifier.lower():
            errors["provider_identifier_confirmation"] = [MSG_EMAIL_MISMATCH]
    elif provider.adapter == A.USERPASS:
        errors.update(password_errors(password, password_confirmation))
    else:
        state = dict(provider_state or {})
        if clean_email is None and identifier and is_email(identifier):
            clean_email = identifier
    if clean_email is not None and not is_email(clean_email):
        errors["email"] = [MSG_EMAIL]
    if identifier and not errors.get("provider_identifier"):
        # citext: case-insensitive, like the unique index.
        taken = AuthIdentity.objects.filter(
            account_id=actor.account_id, provider=provider, provider_identifier=identifier
        ).exists()
        if taken:
            errors["provider_identifier"] = [MSG_TAKEN]
    if errors:
        raise ValidationFailed(errors)
    if provider.adapter == A.USERPASS:
        state = {"password_hash": hash_password(password)}
    return AuthIdentity(
        actor=actor,
        provider=provider,
        account_id=actor.account_id,
        provider_identifier=identifier,
        email=clean_email,
        provider_state=state,
    )


def _save(identity: AuthIdentity, *, subject: Subject | None) -> AuthIdentity:
    try:
        with transaction.atomic():
            identity.save(force_insert=True)
    except IntegrityError as exc:
        if "auth_identities_" in str(exc):
            raise ValidationFailed({"provider_identifier": [MSG_TAKEN]}) from exc
        raise
    changes.inserted(identity, subject=subject)
    return identity


@transaction.atomic
def identity_create(
    *,
    subject: Subject,
    actor: Actor,
    provider: AuthProvider,
    provider_identifier: str,
    email: str | None = None,
    password: str | None = None,
    password_confirmation: str | None = None,
    provider_identifier_confirmation: str | None = None,
) -> AuthIdentity:
    """An admin adds a login for `actor` at `provider` (both of the subject's account)."""
    ensure_permissions(subject, P.IDENTITY_MANAGE)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id)
    provider = get_or_not_found(AuthProvider, provider, account_id=subject.account_id)
    if provider.adapter not in MANUAL_IDENTITY_ADAPTERS:
        # Synced providers' identities come from their directory (portal.md §5.2 row 37).
        raise ValidationFailed({"provider_id": [MSG_NO_MANUAL_IDENTITIES]})
    identity = _build(
        actor=actor,
        provider=provider,
        provider_identifier=provider_identifier,
        email=email,
        password=password,
        password_confirmation=password_confirmation,
        provider_identifier_confirmation=provider_identifier_confirmation,
        provider_state=None,
        require_confirmation=True,
    )
    for key, value in subject.trail().items():
        setattr(identity, key, value)
    return _save(identity, subject=subject)


@transaction.atomic
def identity_create_system(
    *,
    actor: Actor,
    provider: AuthProvider,
    provider_identifier: str,
    email: str | None = None,
    password: str | None = None,
    password_confirmation: str | None = None,
    provider_identifier_confirmation: str | None = None,
    provider_state: Mapping[str, Any] | None = None,
    by_provider: bool = False,
) -> AuthIdentity:
    """System path (sign-up, seeds, directory sync with `by_provider=True`). Same rules, except
    that an email confirmation is checked only when given; `provider_state` is kept for OIDC."""
    if provider.account_id != actor.account_id:
        raise NotFound()
    identity = _build(
        actor=actor,
        provider=provider,
        provider_identifier=provider_identifier,
        email=email,
        password=password,
        password_confirmation=password_confirmation,
        provider_identifier_confirmation=provider_identifier_confirmation,
        provider_state=provider_state,
        require_confirmation=False,
    )
    for key, value in (PROVIDER_TRAIL if by_provider else SYSTEM_TRAIL).items():
        setattr(identity, key, value)
    return _save(identity, subject=None)


def identity_connect_admin(
    *,
    subject: Subject,
    provider: AuthProvider,
    identifier: str,
    email: str | None,
    provider_state: Mapping[str, Any],
) -> AuthIdentity:
    """Create or update the subject's identity at `provider` for the IdP user `identifier`.
    An identity of that IdP user belonging to another actor is refused: the admin must consent
    as themselves. An unused identity of the admin pre-created with their email takes the IdP
    identifier (as at sign-in). Part of `provider_connect_admin` (portal.md §4.13.7), which checks
    the permissions and runs it in a savepoint."""
    mine = AuthIdentity.objects.select_for_update().filter(
        account_id=subject.account_id, provider=provider
    )
    identity = mine.filter(provider_identifier=identifier).first()
    if identity is not None and identity.actor_id != subject.actor_id:
        raise Refused("The IdP user belongs to another actor.", code="identity_of_another_actor")
    if identity is None and email:
        identity = mine.filter(
            actor_id=subject.actor_id, provider_identifier=email, last_seen_at__isnull=True
        ).first()
    clean_email = email if email and is_email(email) else None
    if identity is None:
        identity = AuthIdentity(
            actor_id=subject.actor_id,
            provider=provider,
            account_id=subject.account_id,
            provider_identifier=identifier,
            email=clean_email,
            provider_state=dict(provider_state),
            **subject.trail(),
        )
        identity.save(force_insert=True)
        changes.inserted(identity, subject=subject)
        return identity
    old = changes.row_image(identity)
    identity.provider_identifier = identifier
    identity.email = clean_email or identity.email
    identity.provider_state = dict(provider_state)
    identity.save(update_fields=["provider_identifier", "email", "provider_state"])
    changes.updated(old, identity, subject=subject)
    return identity


@transaction.atomic
def identity_delete(*, subject: Subject, identity: AuthIdentity) -> AuthIdentity:
    """Hard-delete an identity with its clients and tokens. One's own needs
    `identity:manage_own`, anyone else's `identity:manage`; synced identities are refused."""
    ensure_permissions(subject, one_of=(P.IDENTITY_MANAGE, P.IDENTITY_MANAGE_OWN))
    identity = get_or_not_found(
        AuthIdentity, identity, account_id=subject.account_id, for_update=True
    )
    if identity.actor_id == subject.actor_id:
        ensure_permissions(subject, P.IDENTITY_MANAGE_OWN)
    else:
        ensure_permissions(subject, P.IDENTITY_MANAGE)
    if identity.created_by == "provider":
        raise Refused(
            "Identities synced from an identity provider cannot be deleted.",
            code="cant_delete_synced_identity",
        )
    changes.delete(identity, subject=subject)
    return identity
