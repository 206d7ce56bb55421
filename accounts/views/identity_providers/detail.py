"""Admin pages: an identity provider (portal.md §4.13.5) with its events (disable, enable,
delete, delete stale actors) and the "system" page of the email and username & password
providers (§4.13.6, no delete).

Disabling or deleting the account's last active provider is refused with an error flash (§9
items 5 and 6); disabling also deletes the provider's tokens (the service does both)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts import oidc
from accounts.models import Account, AuthProvider
from accounts.providers import CONSENT_ADAPTERS
from accounts.selectors.groups import groups_count_by_provider
from accounts.selectors.identities import identities_count_by_provider
from accounts.selectors.providers import (
    provider_get_for_adapter,
    provider_get_system,
    provider_stale_actors_count,
)
from accounts.services.providers import (
    PENDING_ACCESS_TOKEN,
    provider_delete,
    provider_delete_stale_actors,
    provider_disable,
    provider_enable,
)
from accounts.views.identity_providers.common import (
    SYSTEM_ADAPTERS,
    A,
    adapter_label,
    connect_url,
    is_default,
    list_url,
    page_context,
    provider_status,
    provider_url,
    sync_status,
)
from directory_sync.services.workos_setup import (
    WorkOSSetupFailed,
    provider_workos_portal_link_create,
)
from directory_sync.workos import WorkOSNotConfigured
from firezone.web import audit
from firezone.web.events import Handler, page_events
from firezone.web.pages import redirect_error, redirect_info
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required

MSG_DISABLED = "Identity provider was disabled."
MSG_ENABLED = "Identity provider was enabled."
MSG_DELETED = "Identity provider was deleted."
MSG_STALE_DELETED = "{n} stale Actor(s) deleted."

# --- detail pages (§4.13.5, §4.13.6) --------------------------------------------------------------


def _event(request: PortalRequest, account: Account, provider: AuthProvider) -> HttpResponse:
    subject = request.subject
    here = provider_url(account, provider)

    def disable() -> HttpResponse:
        provider_disable(subject=subject, provider=provider)
        return redirect_info(request, here, MSG_DISABLED)

    def enable() -> HttpResponse:
        provider_enable(subject=subject, provider=provider)
        return redirect_info(request, here, MSG_ENABLED)

    def delete() -> HttpResponse:
        provider_delete(subject=subject, provider=provider)
        return redirect_info(request, list_url(account), MSG_DELETED)

    def delete_stale_actors() -> HttpResponse:
        count = provider_delete_stale_actors(subject=subject, provider=provider)
        return redirect_info(request, here, MSG_STALE_DELETED.format(n=count))

    handlers: dict[str, Handler] = {"disable": disable, "enable": enable}
    if provider.adapter not in SYSTEM_ADAPTERS:
        handlers["delete"] = delete
    if provider.is_sync_adapter:
        handlers["delete_stale_actors"] = delete_stale_actors

    def setup_sync() -> HttpResponse:
        # To the WorkOS admin portal, which sends the admin back here when done (§2.11).
        success_url = f"{str(settings.EXTERNAL_URL).rstrip('/')}{here}"
        try:
            link = provider_workos_portal_link_create(
                subject=subject, provider=provider, success_url=success_url
            )
        except (WorkOSNotConfigured, WorkOSSetupFailed) as exc:
            return redirect_error(request, here, exc.message)
        return HttpResponseRedirect(link)

    if provider.adapter == A.JUMPCLOUD:
        handlers["setup_sync"] = setup_sync
    return page_events(request, here=here, handlers=handlers, strict=True)


def _detail_context(
    request: PortalRequest, account: Account, provider: AuthProvider
) -> dict[str, Any]:
    subject = request.subject
    identities = identities_count_by_provider(subject).get(provider.pk, 0)
    groups = groups_count_by_provider(subject).get(provider.pk, 0)
    config = provider.adapter_config or {}
    pending = (provider.adapter_state or {}).get("status") == PENDING_ACCESS_TOKEN
    return page_context(
        account,
        page_title=f"Identity Provider: {provider.name}",
        breadcrumbs=[
            ("Identity Providers Settings", list_url(account)),
            (provider.name, provider_url(account, provider)),
        ],
        provider=provider,
        config=config,
        type_label=adapter_label(provider),
        is_default=is_default(provider),
        status=provider_status(account, provider),
        sync=sync_status(account, provider, identities, groups),
        edit_url=provider_url(account, provider, "identity_provider_edit"),
        connect_url=connect_url(account, provider),
        pending=pending,
        connectable=provider.adapter in CONSENT_ADAPTERS,
        history=audit.history(account, "auth_providers", provider.pk),
        stale_actors=(
            provider_stale_actors_count(subject, provider=provider)
            if provider.is_sync_adapter
            else 0
        ),
        discovery_url=oidc.discovery_document_uri(provider) if oidc.is_oidc(provider) else None,
        workos_org=config.get("workos_org"),
        system=provider.adapter in SYSTEM_ADAPTERS,
        # Sync adapters are enabled by the OAuth consent, not by hand, while it is pending.
        can_enable=not (provider.is_sync_adapter and pending),
        disable_body=(
            "Are you sure you want to disable this Provider? This will **immediately** sign out "
            "all Actors who were signed in using this Provider"
            + (" and directory sync will be paused." if provider.is_sync_adapter else ".")
        ),
        delete_body=(
            "Are you sure you want to delete this provider? This will remove **all** "
            + (
                "Actors and Groups associated with this provider."
                if provider.is_sync_adapter
                else "Identities, Groups and Policies associated with this provider."
            )
        ),
    )


@admin_required
@require_http_methods(["GET", "POST"])
def provider_detail(
    request: PortalRequest, account: Account, adapter: str, id: str
) -> HttpResponse:
    subject = request.subject
    provider = provider_get_for_adapter(subject, provider_id=id, adapter=adapter)
    if request.method == "POST":
        return _event(request, account, provider)
    return render(
        request,
        "accounts/identity_providers/detail.html",
        _detail_context(request, account, provider),
    )


@admin_required
@require_http_methods(["GET", "POST"])
def system_provider_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    provider = provider_get_system(subject, provider_id=id)
    if request.method == "POST":
        return _event(request, account, provider)
    return render(
        request,
        "accounts/identity_providers/system.html",
        _detail_context(request, account, provider),
    )
