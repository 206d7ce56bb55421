"""Identity provider writes (domain.md §1.5, §2.4).

What differs by adapter (configuration, provisioner, consent, directory sync) is asked of the
adapter registry, `accounts.providers`. Uniqueness (one email/userpass provider, one provider
per directory-sync kind, one OIDC client id) is the database's unique indexes, turned into
validation errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.auth import P, Subject, ensure_permissions, trail_for
from accounts.features import feature_enabled
from accounts.models import Account, AuthIdentity, AuthProvider, Token
from accounts.providers import (  # noqa: F401  (re-exported for the provider forms and views)
    CONSENT_ADAPTERS,
    DEFAULT_SCOPES,
    GOOGLE_KEY_FIELDS,
    MOCK_DEFAULTS,
    REQUIRED_SCOPES,
    adapter_spec,
    adapters_for_creation,
    url_errors,
)
from accounts.providers.base import MSG_BLANK, MSG_INVALID
from accounts.selectors.providers import stale_synced_actors
from accounts.services._names import clean_display_name
from accounts.services.identities import is_email
from firezone import changes
from firezone.errors import Refused, ValidationFailed
from firezone.lookup import get_or_not_found

A = AuthProvider.Adapter

# Per-index messages (§1.5).
UNIQUE_MESSAGES = {
    "auth_providers_account_id_adapter_index": ("adapter", "this provider is already enabled"),
    "auth_providers_account_id_oidc_adapter_index": (
        "adapter",
        "this provider is already connected",
    ),
    "unique_account_adapter_index": (
        "adapter",
        "only one of this adapter type may be enabled per account",
    ),
    "auth_providers_account_id_assigned_default_at_index": (
        "assigned_default_at",
        "only one provider may be assigned default for client authentication",
    ),
    # A pre-generated id submitted twice (the UI generates it when the form opens).
    "accounts_authprovider_pkey": ("id", "has already been taken"),
}
PENDING_ACCESS_TOKEN = "pending_access_token"


def default_provisioner(adapter: str) -> str:
    """Directory-sync adapters provision through sync (`custom`), the others manually."""
    return adapter_spec(adapter).provisioner()


def clean_adapter_config(adapter: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate and normalise `adapter_config` for `adapter` (§1.5); strings are trimmed.
    Errors are reported as `adapter_config.<key>`."""
    return adapter_spec(adapter).clean_config(dict(config or {}))


def _save(provider: AuthProvider, *, creating: bool) -> None:
    """Save in a savepoint, reporting a unique index as the spec's message."""
    try:
        with transaction.atomic():
            provider.save(force_insert=creating)
    except IntegrityError as exc:
        for index, (field, message) in UNIQUE_MESSAGES.items():
            if index in str(exc):
                raise ValidationFailed({field: [message]}) from exc
        raise


def _build(
    *,
    account_id: Any,
    name: Any,
    adapter: Any,
    adapter_config: Mapping[str, Any] | None,
    provisioner: str | None,
    allowed: tuple[str, ...],
    id: Any = None,
) -> AuthProvider:
    errors: dict[str, list[str]] = {}
    clean_name = clean_config = None
    try:
        clean_name = clean_display_name(name)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if not adapter:
        errors["adapter"] = [MSG_BLANK]
    elif adapter not in allowed:
        errors["adapter"] = [MSG_INVALID]
    else:
        provisioner = provisioner or default_provisioner(adapter)
        # Every adapter offers exactly its default provisioner (§1.5).
        if provisioner != default_provisioner(adapter):
            errors["provisioner"] = [MSG_INVALID]
        try:
            clean_config = clean_adapter_config(adapter, adapter_config)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if id is not None:
        try:
            id = uuid.UUID(str(id))
        except ValueError:
            errors["id"] = [MSG_INVALID]
    if errors:
        raise ValidationFailed(errors)
    provider = AuthProvider(
        account_id=account_id,
        name=clean_name,
        adapter=adapter,
        provisioner=provisioner,
        adapter_config=clean_config,
    )
    if id is not None:
        provider.id = id
    return provider


@transaction.atomic
def provider_create(
    *,
    subject: Subject,
    name: str,
    adapter: str,
    adapter_config: Mapping[str, Any] | None = None,
    provisioner: str | None = None,
    id: Any = None,
    awaiting_consent: bool | None = None,
) -> AuthProvider:
    """A provider of the subject's account. Directory-sync adapters need the `idp_sync`
    feature. Providers finished by the admin's OAuth consent start disabled with
    `adapter_state = {"status": "pending_access_token"}` until `provider_connect_admin`:
    `awaiting_consent` says whether this one does; by default the directory-sync adapters with an
    IdP (all but `mock`, which has no OAuth step) do, and the UI also asks it for plain OpenID
    Connect (portal.md §4.13.3). `id` may be pre-generated by the UI (it is part of the redirect
    URLs)."""
    ensure_permissions(subject, P.PROVIDER_MANAGE)
    provider = _build(
        account_id=subject.account_id,
        name=name,
        adapter=adapter,
        adapter_config=adapter_config,
        provisioner=provisioner,
        allowed=adapters_for_creation(),
        id=id,
    )
    if provider.is_sync_adapter and not feature_enabled(subject.account, "idp_sync"):
        raise ValidationFailed({"adapter": ["is not available for this account"]})
    spec = adapter_spec(provider.adapter)
    if awaiting_consent is None:
        awaiting_consent = spec.directory_sync and spec.consent
    if awaiting_consent and spec.consent:
        provider.disabled_at = timezone.now()
        provider.adapter_state = {"status": PENDING_ACCESS_TOKEN}
    for key, value in subject.trail().items():
        setattr(provider, key, value)
    _save(provider, creating=True)
    changes.inserted(provider, subject=subject)
    return provider


@transaction.atomic
def provider_create_system(
    *,
    account: Account,
    name: str,
    adapter: str,
    adapter_config: Mapping[str, Any] | None = None,
    provisioner: str | None = None,
    adapter_state: Mapping[str, Any] | None = None,
) -> AuthProvider:
    """System path (sign-up, Stripe provisioning, seeds): any adapter, created enabled."""
    provider = _build(
        account_id=account.pk,
        name=name,
        adapter=adapter,
        adapter_config=adapter_config,
        provisioner=provisioner,
        allowed=tuple(A.values),
    )
    provider.adapter_state = dict(adapter_state or {})
    for key, value in trail_for(None).items():
        setattr(provider, key, value)
    _save(provider, creating=True)
    changes.inserted(provider)
    return provider


@transaction.atomic
def provider_connect(*, provider: AuthProvider, adapter_state: Mapping[str, Any]) -> AuthProvider:
    """System path: the admin completed the IdP's OAuth consent; keep its token state and
    (re-)enable the provider with a clean sync record."""
    provider = AuthProvider.objects.select_for_update().get(pk=provider.pk)
    old = changes.row_image(provider)
    provider.adapter_state = dict(adapter_state)
    provider.disabled_at = None
    provider.last_syncs_failed = 0
    provider.last_sync_error = None
    provider.sync_disabled_at = None
    _drop_stale_default(provider)
    _save(provider, creating=False)
    changes.updated(old, provider)
    return provider


@transaction.atomic
def provider_update(
    *,
    subject: Subject,
    provider: AuthProvider,
    name: str | None = None,
    adapter_config: Mapping[str, Any] | None = None,
) -> AuthProvider:
    """Rename and/or replace the adapter configuration (validated as on create)."""
    provider = _locked_provider(subject, provider)
    errors: dict[str, list[str]] = {}
    clean_name = clean_config = None
    try:
        clean_name = clean_display_name(name) if name is not None else None
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        if adapter_config is not None:
            clean_config = clean_adapter_config(provider.adapter, adapter_config)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    old = changes.row_image(provider)
    if clean_name is not None:
        provider.name = clean_name
    if clean_config is not None:
        provider.adapter_config = clean_config
    _save(provider, creating=False)
    changes.updated(old, provider, subject=subject)
    return provider


def _locked_provider(subject: Subject, provider: AuthProvider | Any) -> AuthProvider:
    """A provider of the subject's account, locked (`provider:manage`)."""
    ensure_permissions(subject, P.PROVIDER_MANAGE)
    return get_or_not_found(AuthProvider, provider, account_id=subject.account_id, for_update=True)


def _refuse_last_active_provider(provider: AuthProvider, action: str) -> None:
    """An account keeps one active provider: `action` ("disable", "delete") is refused on it."""
    if not _other_active_provider_exists(provider):
        raise Refused(
            f"You can not {action} the last active provider of the account.",
            code=f"cant_{action}_the_last_provider",
        )


def _other_active_provider_exists(provider: AuthProvider) -> bool:
    # Lock the account's providers: two concurrent disables must not both pass.
    others = (
        AuthProvider.objects.select_for_update()
        .filter(account_id=provider.account_id, disabled_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return any(pk != provider.pk for pk in others)


@transaction.atomic
def provider_disable(*, subject: Subject, provider: AuthProvider) -> AuthProvider:
    """Disable a provider and hard-delete the tokens of its identities (signing them out)."""
    provider = _locked_provider(subject, provider)
    _refuse_last_active_provider(provider, "disable")
    old = changes.row_image(provider)
    provider.disabled_at = provider.disabled_at or timezone.now()
    _save(provider, creating=False)
    changes.updated(old, provider, subject=subject)
    changes.delete(Token.objects.filter(identity__provider=provider), subject=subject)
    return provider


def _drop_stale_default(provider: AuthProvider) -> None:
    # A provider marked default while disabled loses the mark if another one took over.
    if provider.assigned_default_at is None:
        return
    taken = (
        AuthProvider.objects.filter(
            account_id=provider.account_id,
            disabled_at__isnull=True,
            assigned_default_at__isnull=False,
        )
        .exclude(pk=provider.pk)
        .exists()
    )
    if taken:
        provider.assigned_default_at = None


@transaction.atomic
def provider_enable(*, subject: Subject, provider: AuthProvider) -> AuthProvider:
    provider = _locked_provider(subject, provider)
    old = changes.row_image(provider)
    provider.disabled_at = None
    _drop_stale_default(provider)
    _save(provider, creating=False)
    changes.updated(old, provider, subject=subject)
    return provider


@transaction.atomic
def provider_delete(*, subject: Subject, provider: AuthProvider) -> AuthProvider:
    """Hard-delete a provider with its identities (their clients and tokens) and synced
    groups (their memberships, policies and flows). Actors stay."""
    provider = _locked_provider(subject, provider)
    _refuse_last_active_provider(provider, "delete")
    changes.delete(provider, subject=subject)
    return provider


def _clear_defaults(account_id: Any, *, subject: Subject) -> None:
    for other in AuthProvider.objects.select_for_update().filter(
        account_id=account_id, disabled_at__isnull=True, assigned_default_at__isnull=False
    ):
        old = changes.row_image(other)
        other.assigned_default_at = None
        other.save()
        changes.updated(old, other, subject=subject)


@transaction.atomic
def provider_assign_default(*, subject: Subject, provider: AuthProvider) -> AuthProvider:
    """Make `provider` the account's default for client sign-in (clearing any other)."""
    provider = _locked_provider(subject, provider)
    if provider.is_disabled:
        raise Refused("A disabled provider cannot be the default.", code="provider_disabled")
    if adapter_spec(provider.adapter).singleton:
        # Clients are sent straight to the default's IdP: only the OIDC family can be one.
        raise Refused("Only an OpenID Connect provider can be the default.", code="not_oidc")
    _clear_defaults(subject.account_id, subject=subject)
    provider.refresh_from_db()
    old = changes.row_image(provider)
    provider.assigned_default_at = timezone.now()
    _save(provider, creating=False)
    changes.updated(old, provider, subject=subject)
    return provider


@transaction.atomic
def provider_clear_default(*, subject: Subject) -> None:
    """No default provider: clients choose at sign-in."""
    ensure_permissions(subject, P.PROVIDER_MANAGE)
    _clear_defaults(subject.account_id, subject=subject)


# --- the admin's OAuth consent (portal.md §4.13.7) ------------------------------------------------


def _connected_identity(
    subject: Subject,
    provider: AuthProvider,
    *,
    identifier: str,
    email: str | None,
    provider_state: Mapping[str, Any],
) -> AuthIdentity:
    """Create or update the subject's identity at `provider` for the IdP user `identifier`.
    An identity of that IdP user belonging to another actor is refused: the admin must consent
    as themselves. An unused identity of the admin pre-created with their email takes the IdP
    identifier (as at sign-in)."""
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
def provider_connect_admin(
    *,
    subject: Subject,
    provider: AuthProvider,
    provider_identifier: str,
    email: str | None,
    provider_state: Mapping[str, Any],
) -> AuthProvider:
    """The signed-in admin finished the IdP's OAuth consent for `provider`: their identity at
    the provider is created or updated (upsert by IdP identifier), then the provider is
    connected and enabled — plain OpenID Connect keeps `{"status": "connected"}`, directory-sync
    adapters keep the admin's token state for their sync jobs."""
    ensure_permissions(subject, P.PROVIDER_MANAGE, P.IDENTITY_MANAGE)
    provider = _locked_provider(subject, provider)
    spec = adapter_spec(provider.adapter)
    if not spec.consent:
        raise Refused("This provider has no OAuth consent step.", code="not_connectable")
    identifier = provider_identifier.strip() if isinstance(provider_identifier, str) else ""
    if not identifier or len(identifier) > 255:
        raise ValidationFailed({"provider_identifier": [MSG_INVALID]})
    try:
        with transaction.atomic():
            _connected_identity(
                subject,
                provider,
                identifier=identifier,
                email=email.strip() if isinstance(email, str) else None,
                provider_state=provider_state,
            )
    except IntegrityError as exc:
        raise Refused("The IdP user belongs to another actor.", code="identifier_taken") from exc
    state = dict(provider_state) if spec.directory_sync else {"status": "connected"}
    return provider_connect(provider=provider, adapter_state=state)


# --- actors left behind by directory sync ---------------------------------------------------------


@transaction.atomic
def provider_delete_stale_actors(*, subject: Subject, provider: AuthProvider) -> int:
    """Delete the actors of `stale_synced_actors` (with their clients, tokens, memberships);
    returns how many. The subject is never among them: it signed in with an identity."""
    ensure_permissions(subject, P.PROVIDER_MANAGE, P.ACTOR_MANAGE)
    provider = _locked_provider(subject, provider)
    stale = stale_synced_actors(provider).select_for_update()
    recorded = changes.delete(stale, subject=subject)
    return sum(1 for change in recorded if change.table == "actors")
