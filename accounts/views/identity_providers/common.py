"""What the identity provider pages share (portal.md §4.13): the adapters offered, the
provider URLs (named routes) and the IdP redirect URIs, and the status rendering of the list and
detail pages ("Provider status", "Sync status")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from accounts.forms.providers import ADAPTER_LABELS
from accounts.models import Account, AuthProvider
from accounts.providers import CONSENT_ADAPTERS
from accounts.services.providers import PENDING_ACCESS_TOKEN
from firezone.web.pages import account_url

A = AuthProvider.Adapter
SYSTEM_ADAPTERS = AuthProvider.SINGLETON_ADAPTERS
# Directory-sync adapters whose access is renewed with a refresh token (status rendering).
REFRESH_TOKEN_ADAPTERS = (A.GOOGLE_WORKSPACE, A.MICROSOFT_ENTRA, A.OKTA)
UPSELL_ADAPTERS = (A.GOOGLE_WORKSPACE, A.MICROSOFT_ENTRA, A.OKTA, A.JUMPCLOUD)


# --- URLs -----------------------------------------------------------------------------------------


def list_url(account: Account) -> str:
    return account_url(account, "identity_providers")


def provider_url(account: Account, provider: AuthProvider, name: str = "identity_provider") -> str:
    """The adapter-specific page (the "system" page for email and username & password), or
    another route of the provider (`name`: edit, connect)."""
    if provider.adapter in SYSTEM_ADAPTERS:
        return account_url(account, "system_provider", id=provider.pk)
    return account_url(account, name, adapter=provider.adapter, id=provider.pk)


def connect_url(account: Account, provider: AuthProvider) -> str:
    return provider_url(account, provider, "identity_provider_connect")


def external_url(name: str, **kwargs: Any) -> str:
    return f"{str(settings.EXTERNAL_URL).rstrip('/')}{reverse(name, kwargs=kwargs)}"


def redirect_uris(account: Account, adapter: str, provider_id: Any) -> list[str]:
    """The two URLs to whitelist at the IdP (step 1): sign-in and connect callbacks, always
    with the account **id**."""
    return [
        external_url("oidc_callback", account=account.pk, provider_id=provider_id),
        external_url(
            "identity_provider_connect_callback",
            account=account.pk,
            adapter=adapter,
            id=provider_id,
        ),
    ]


# --- status rendering (§4.13 "Provider status", "Sync status") ---------------------------------


@dataclass(frozen=True)
class Status:
    kind: str  # "ok" (green), "err" (red) or "" (plain)
    text: str
    connect_url: str | None = None


@dataclass(frozen=True)
class SyncStatus:
    custom: bool  # directory sync (else manual provisioning)
    synced_at: datetime | None
    failed: int  # counted failures in a row ("Never synced" only without any)
    healthy: bool
    identities: int
    groups: int
    identities_text: str
    groups_text: str
    actors_url: str
    groups_url: str
    error: str | None  # shown in the detail page's error box


def _utc_text(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "unknown"


def provider_status(account: Account, provider: AuthProvider) -> Status:
    state = provider.adapter_state or {}
    if (
        provider.adapter in REFRESH_TOKEN_ADAPTERS
        and not provider.is_disabled
        and state.get("refresh_token") is None
    ):
        return Status(
            "err",
            "No refresh token provided by IdP and access token expires on "
            f"{_utc_text(state.get('expires_at'))} UTC",
        )
    if (
        provider.is_disabled
        and provider.adapter in CONSENT_ADAPTERS
        and state.get("status") == PENDING_ACCESS_TOKEN
    ):
        return Status("err", "Provisioning", connect_url(account, provider))
    if provider.is_disabled:
        return Status("", "Disabled")
    return Status("ok", "Active")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def sync_status(
    account: Account, provider: AuthProvider, identities: int, groups: int
) -> SyncStatus:
    custom = provider.provisioner == AuthProvider.Provisioner.CUSTOM
    failed = provider.last_syncs_failed or 0
    paused = provider.sync_disabled_at is not None
    synced_at = provider.last_synced_at
    error = provider.last_sync_error
    show_error = bool(error) and ((synced_at is None and bool(error)) or paused or failed > 3)
    if custom:
        identities_text = _plural(identities, "identity", "identities")
        groups_text = _plural(groups, "group", "groups")
    else:
        identities_text = f"{identities} identities"
        groups_text = f"{groups} groups"
    return SyncStatus(
        custom=custom,
        synced_at=synced_at,
        failed=failed,
        healthy=not (failed > 3 or paused),
        identities=identities,
        groups=groups,
        identities_text=identities_text,
        groups_text=groups_text,
        actors_url=account_url(
            account, "actors", query={"actors_filter[provider_id]": provider.pk}
        ),
        groups_url=account_url(
            account, "groups", query={"groups_filter[provider_id]": provider.pk}
        ),
        error=error if custom and show_error else None,
    )


def adapter_label(provider: AuthProvider) -> str:
    return ADAPTER_LABELS.get(provider.adapter, provider.adapter)


def is_default(provider: AuthProvider) -> bool:
    return provider.assigned_default_at is not None and not provider.is_disabled


def page_context(account: Account, **context: Any) -> dict[str, Any]:
    return {"account": account, "list_url": list_url(account), **context}
