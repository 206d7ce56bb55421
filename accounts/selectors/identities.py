"""Identity reads (domain.md §3.3 "Auth / Identity"): `identity:manage` sees the account's
identities, `identity:manage_own` only the subject's own."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Actor, AuthIdentity, AuthProvider
from accounts.providers import MANUAL_IDENTITY_ADAPTERS
from accounts.selectors.scopes import account_or_own
from firezone.lookup import get_or_not_found


def _scoped(subject: Subject) -> QuerySet[AuthIdentity]:
    queryset = account_or_own(
        subject,
        AuthIdentity.objects.all(),
        manage=P.IDENTITY_MANAGE,
        manage_own=P.IDENTITY_MANAGE_OWN,
    )
    return queryset.select_related("provider", "actor")


def identity_get(subject: Subject, *, identity_id: Any) -> AuthIdentity:
    return get_or_not_found(_scoped(subject), identity_id, account_id=subject.account_id)


def identity_list_for_actor(subject: Subject, *, actor: Actor | Any) -> QuerySet[AuthIdentity]:
    """An actor's identities, newest first (others' need `identity:manage`)."""
    queryset = _scoped(subject)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id)
    return queryset.filter(actor=actor).order_by("-inserted_at", "-id")


def identities_count_by_provider(subject: Subject) -> dict[Any, int]:
    ensure_permissions(subject, P.IDENTITY_MANAGE)
    rows = (
        AuthIdentity.objects.filter(account_id=subject.account_id)
        .values("provider_id")
        .annotate(n=Count("id"))
    )
    return {row["provider_id"]: row["n"] for row in rows}


def identity_provider_options(subject: Subject, *, actor: Actor | Any) -> QuerySet[AuthProvider]:
    """Providers an admin may add an identity of `actor` at: enabled, manually provisionable,
    and not already holding one of the actor's identities."""
    ensure_permissions(subject, P.IDENTITY_MANAGE, P.PROVIDER_MANAGE)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id)
    taken = AuthIdentity.objects.filter(account_id=subject.account_id, actor=actor).values(
        "provider_id"
    )
    return (
        AuthProvider.objects.filter(
            account_id=subject.account_id,
            disabled_at__isnull=True,
            adapter__in=MANUAL_IDENTITY_ADAPTERS,
        )
        .exclude(pk__in=taken)
        .order_by("inserted_at", "id")
    )
