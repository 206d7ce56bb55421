"""Subjects and the permission model (domain.md §3): who acts, and what each actor type may do.

Every subject-taking service and selector calls `ensure_permissions` first and scopes its query to
`subject.account_id`; an object of another account is reported as not found.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from firezone.errors import Unauthorized

if TYPE_CHECKING:
    from accounts.models import Account, Actor, AuthIdentity


class P(enum.StrEnum):
    """Permissions, as `resource:action` (domain.md §3.2)."""

    ACCOUNT_MANAGE_OWN = "account:manage_own"
    ACTOR_MANAGE = "actor:manage"
    ACTOR_EDIT_OWN_PROFILE = "actor:edit_own_profile"
    ACTOR_GROUP_MANAGE = "actor_group:manage"
    PROVIDER_MANAGE = "provider:manage"
    IDENTITY_MANAGE = "identity:manage"
    IDENTITY_MANAGE_OWN = "identity:manage_own"
    AUTH_MANAGE_SERVICE_ACCOUNTS = "auth:manage_service_accounts"
    AUTH_MANAGE_API_CLIENTS = "auth:manage_api_clients"
    BILLING_MANAGE_OWN = "billing:manage_own"
    CLIENT_MANAGE = "client:manage"
    CLIENT_MANAGE_OWN = "client:manage_own"
    CLIENT_VERIFY = "client:verify"
    GATEWAY_MANAGE = "gateway:manage"
    GATEWAY_CONNECT = "gateway:connect"
    POLICY_MANAGE = "policy:manage"
    POLICY_VIEW_AVAILABLE = "policy:view_available_policies"
    RELAY_MANAGE = "relay:manage"
    RESOURCE_MANAGE = "resource:manage"
    RESOURCE_VIEW_AVAILABLE = "resource:view_available_resources"
    FLOW_MANAGE = "flow:manage"
    FLOW_CREATE = "flow:create"
    TOKEN_MANAGE = "token:manage"
    TOKEN_MANAGE_OWN = "token:manage_own"


_EVERYONE = {
    P.CLIENT_MANAGE_OWN,
    P.GATEWAY_CONNECT,
    P.POLICY_VIEW_AVAILABLE,
    P.RESOURCE_VIEW_AVAILABLE,
    P.FLOW_CREATE,
}
_USER = _EVERYONE | {P.ACTOR_EDIT_OWN_PROFILE, P.IDENTITY_MANAGE_OWN, P.TOKEN_MANAGE_OWN}
_API_CLIENT = _USER | {
    P.ACCOUNT_MANAGE_OWN,
    P.ACTOR_MANAGE,
    P.ACTOR_GROUP_MANAGE,
    P.PROVIDER_MANAGE,
    P.IDENTITY_MANAGE,
    P.AUTH_MANAGE_SERVICE_ACCOUNTS,
    P.CLIENT_MANAGE,
    P.CLIENT_VERIFY,
    P.GATEWAY_MANAGE,
    P.POLICY_MANAGE,
    P.RESOURCE_MANAGE,
    P.FLOW_MANAGE,
    P.TOKEN_MANAGE,
}
_ADMIN = _API_CLIENT | {P.AUTH_MANAGE_API_CLIENTS, P.BILLING_MANAGE_OWN, P.RELAY_MANAGE}

ROLE_PERMISSIONS: dict[str, frozenset[P]] = {
    "account_admin_user": frozenset(_ADMIN),
    "api_client": frozenset(_API_CLIENT),
    "account_user": frozenset(_USER),
    "service_account": frozenset(_EVERYONE),
}


def permissions_for(actor_type: str) -> frozenset[P]:
    return ROLE_PERMISSIONS.get(actor_type, frozenset())


@dataclass(frozen=True)
class Context:
    """Where a request comes from (domain.md §3.1)."""

    type: str = "browser"  # browser | client | email | api_client | gateway_group | relay_group
    remote_ip: str | None = None
    user_agent: str | None = None
    remote_ip_location_region: str | None = None
    remote_ip_location_city: str | None = None
    remote_ip_location_lat: float | None = None
    remote_ip_location_lon: float | None = None

    def last_seen_location(self) -> dict[str, Any]:
        """The `last_seen_remote_ip_location_*` columns (`LastSeenLocation`) of this request."""
        return {
            "last_seen_remote_ip_location_region": self.remote_ip_location_region,
            "last_seen_remote_ip_location_city": self.remote_ip_location_city,
            "last_seen_remote_ip_location_lat": self.remote_ip_location_lat,
            "last_seen_remote_ip_location_lon": self.remote_ip_location_lon,
        }


@dataclass(frozen=True)
class Subject:
    """An authenticated principal acting inside one account."""

    account: Account
    actor: Actor
    identity: AuthIdentity | None = None
    token_id: Any = None
    expires_at: datetime | None = None
    context: Context = field(default_factory=Context)
    permissions: frozenset[P] = frozenset()

    @classmethod
    def build(
        cls,
        *,
        actor: Actor,
        identity: AuthIdentity | None = None,
        token_id: Any = None,
        expires_at: datetime | None = None,
        context: Context | None = None,
    ) -> Subject:
        return cls(
            account=actor.account,
            actor=actor,
            identity=identity,
            token_id=token_id,
            expires_at=expires_at,
            context=context or Context(),
            permissions=permissions_for(actor.type),
        )

    @property
    def account_id(self) -> Any:
        return self.account.pk

    @property
    def actor_id(self) -> Any:
        return self.actor.pk

    def has(self, permission: P) -> bool:
        return permission in self.permissions

    def trail(self) -> dict[str, Any]:
        """`created_by` / `created_by_subject` values for rows this subject creates (§0.5)."""
        if self.identity is not None:
            email = getattr(self.identity, "email", None) or self.identity.provider_identifier
            return {
                "created_by": "identity",
                "created_by_subject": {"name": self.actor.name, "email": email},
            }
        return {
            "created_by": "actor",
            "created_by_subject": {"name": self.actor.name, "email": None},
        }


SYSTEM_TRAIL: dict[str, Any] = {
    "created_by": "system",
    "created_by_subject": {"name": "System", "email": None},
}
PROVIDER_TRAIL: dict[str, Any] = {
    "created_by": "provider",
    "created_by_subject": {"name": "Provider", "email": None},
}


def trail_for(subject: Subject | None) -> dict[str, Any]:
    return subject.trail() if subject is not None else dict(SYSTEM_TRAIL)


def ensure_permissions(subject: Subject, *required: P, one_of: Iterable[P] = ()) -> None:
    """All of `required` (and at least one of `one_of` if given), on an unexpired subject."""
    if subject.expires_at is not None and subject.expires_at <= timezone.now():
        raise Unauthorized("Your session has expired.", reason="subject_expired")
    missing = [p for p in required if p not in subject.permissions]
    alternatives = list(one_of)
    if alternatives and not any(p in subject.permissions for p in alternatives):
        missing.extend(alternatives)
    if missing:
        raise Unauthorized(reason="missing_permissions", missing=[str(p) for p in missing])


def can_grant_role(subject: Subject, actor_type: str) -> bool:
    """A subject may grant a type whose permissions are a subset of its own (§3.2)."""
    return permissions_for(actor_type) <= subject.permissions
