"""Identity provider reads (domain.md §3.5 "Auth"): `provider:manage` for users; the sign-in
pages use the system-path lookups."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Account, Actor, AuthIdentity, AuthProvider
from firezone.errors import NotFound
from firezone.lookup import get_or_not_found


def _scoped(subject: Subject) -> QuerySet[AuthProvider]:
    ensure_permissions(subject, P.PROVIDER_MANAGE)
    return AuthProvider.objects.filter(account_id=subject.account_id)


def provider_get(subject: Subject, *, provider_id: Any) -> AuthProvider:
    return get_or_not_found(_scoped(subject), provider_id, account_id=subject.account_id)


def provider_list(subject: Subject) -> QuerySet[AuthProvider]:
    return _scoped(subject).order_by("inserted_at", "id")


def provider_get_for_adapter(subject: Subject, *, provider_id: Any, adapter: str) -> AuthProvider:
    """The provider, if its adapter is `adapter` (the adapter is part of the page URLs)."""
    provider = provider_get(subject, provider_id=provider_id)
    if provider.adapter != adapter:
        raise NotFound()
    return provider


def provider_get_system(subject: Subject, *, provider_id: Any) -> AuthProvider:
    """An email or username & password provider (the "system" provider page)."""
    provider = provider_get(subject, provider_id=provider_id)
    if provider.adapter not in AuthProvider.SINGLETON_ADAPTERS:
        raise NotFound()
    return provider


def stale_synced_actors(provider: AuthProvider) -> QuerySet[Actor]:
    """Users created by directory sync that no longer have any identity (sync hard-deletes the
    identities of users gone from the IdP and keeps their actors). Identities are hard-deleted,
    so which provider synced such an actor is no longer known: every directory-sync provider of
    the account lists the same actors; other providers none."""
    if not provider.is_sync_adapter:
        return Actor.objects.none()
    with_identity = AuthIdentity.objects.filter(account_id=provider.account_id).values("actor_id")
    return Actor.objects.filter(
        account_id=provider.account_id,
        last_synced_at__isnull=False,
        type__in=Actor.USER_TYPES,
    ).exclude(pk__in=with_identity)


def provider_stale_actors_count(subject: Subject, *, provider: AuthProvider) -> int:
    ensure_permissions(subject, P.PROVIDER_MANAGE, P.ACTOR_MANAGE)
    return stale_synced_actors(provider).count()


# --- system path ---------------------------------------------------------------------------------


def providers_active(*, account: Account) -> QuerySet[AuthProvider]:
    """System path: the enabled providers of an account (sign-in page)."""
    return AuthProvider.objects.filter(account=account, disabled_at__isnull=True).order_by(
        "inserted_at", "id"
    )


def active_provider_get(*, account: Account, provider_id: Any) -> AuthProvider | None:
    """System path: an enabled provider of the account, or None."""
    try:
        return get_or_not_found(
            providers_active(account=account), provider_id, account_id=account.pk
        )
    except NotFound:  # also for malformed ids
        return None


def default_provider(*, account: Account) -> AuthProvider | None:
    """System path: the enabled provider assigned default for client sign-in, if any."""
    return providers_active(account=account).filter(assigned_default_at__isnull=False).first()
