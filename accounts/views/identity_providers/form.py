"""Admin pages: choose an IdP adapter (portal.md §4.13.2) and the new/edit form of each adapter
(§4.13.3, §4.13.4): OpenID Connect (with the directory sync upsell step for
`?provider=<sync adapter>`), Google Workspace, Microsoft Entra, Okta, JumpCloud and Mock. A new
IdP is saved disabled, waiting for the admin's OAuth consent, and the browser goes straight to
the connect flow; Mock has no consent and is saved enabled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.features import feature_enabled
from accounts.forms.providers import ADAPTER_LABELS, FORMS, ProviderForm
from accounts.models import Account, AuthProvider
from accounts.providers import CONSENT_ADAPTERS, adapters_for_creation
from accounts.selectors.providers import provider_get_for_adapter
from accounts.services.providers import provider_create, provider_update
from accounts.views.identity_providers.common import (
    UPSELL_ADAPTERS,
    A,
    connect_url,
    list_url,
    page_context,
    provider_url,
    redirect_uris,
)
from firezone.web.edit import edit_page
from firezone.web.pages import account_url
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required, not_found

# The chooser's order: sync-capable first, then plain OpenID Connect (§4.13.2).
CHOOSER = (
    (A.GOOGLE_WORKSPACE, "Google Workspace", True),
    (A.MICROSOFT_ENTRA, "Microsoft EntraID", True),
    (A.OKTA, "Okta", True),
    (A.JUMPCLOUD, "JumpCloud", True),
    (A.MOCK, "Mock", True),
    (A.OPENID_CONNECT, "OpenID Connect", False),
)
CHOOSER_DESCRIPTIONS = {
    A.GOOGLE_WORKSPACE: "Sign in and sync users and groups from Google Workspace.",
    A.MICROSOFT_ENTRA: "Sign in and sync users and groups from Microsoft EntraID.",
    A.OKTA: "Sign in and sync users and groups from Okta.",
    A.JUMPCLOUD: "Sign in and sync users and groups from JumpCloud.",
    A.MOCK: "Generate fake users and groups, for testing directory sync.",
    A.OPENID_CONNECT: "Authenticate users with any OpenID Connect compliant identity provider.",
}
FORM_TEMPLATE = "accounts/identity_providers/form.html"

# --- choose the adapter (§4.13.2) -----------------------------------------------------------------


def _offered(account: Account) -> list[str]:
    """IdP adapters the deployment offers; Mock only with directory sync (it is a sync
    adapter and has no OpenID Connect fallback)."""
    enabled = set(adapters_for_creation())
    offered: list[str] = [adapter for adapter, _label, _sync in CHOOSER if adapter in enabled]
    if not feature_enabled(account, "idp_sync"):
        offered = [a for a in offered if a != A.MOCK]
    return offered


def _new_url(account: Account, adapter: str) -> str:
    if adapter in UPSELL_ADAPTERS and not feature_enabled(account, "idp_sync"):
        return account_url(
            account,
            "identity_provider_adapter_new",
            adapter=A.OPENID_CONNECT,
            query={"provider": adapter},
        )
    return account_url(account, "identity_provider_adapter_new", adapter=adapter)


@admin_required
@require_GET
def provider_new(request: PortalRequest, account: Account) -> HttpResponse:
    offered = set(_offered(account))
    cards = [
        {
            "adapter": adapter,
            "label": label,
            "sync": sync,
            "description": CHOOSER_DESCRIPTIONS[adapter],
            "href": _new_url(account, adapter),
        }
        for adapter, label, sync in CHOOSER
        if adapter in offered
    ]
    return render(
        request,
        "accounts/identity_providers/new.html",
        page_context(
            account,
            page_title="New Identity Provider",
            breadcrumbs=[
                ("Identity Providers Settings", list_url(account)),
                ("Create Identity Provider", None),
            ],
            cards=cards,
        ),
    )


# --- new / edit forms (§4.13.3, §4.13.4) ----------------------------------------------------------


def _form_context(
    account: Account,
    *,
    page_title: str,
    breadcrumbs: list[tuple[str, str | None]],
    upsell: str | None = None,
) -> Callable[[ProviderForm], dict[str, Any]]:
    def context(form: ProviderForm) -> dict[str, Any]:
        return page_context(
            account,
            page_title=page_title,
            breadcrumbs=breadcrumbs,
            adapter=form.adapter,
            adapter_label=ADAPTER_LABELS[form.adapter],
            # The URLs carry the provider id the form will create (or the edited one).
            redirect_uris=redirect_uris(account, form.adapter, form.provider_id),
            upsell=upsell,
            upsell_label=ADAPTER_LABELS.get(upsell or "", ""),
        )

    return context


def _after_save(request: HttpRequest, account: Account, provider: AuthProvider) -> HttpResponse:
    """IdPs go on to the admin's OAuth consent; Mock straight to its page.

    The consent starts with a full-page navigation, not a redirect of the form post: the CSP's
    `form-action 'self'` also covers the redirects a form submission follows, so a post that
    ends at the IdP's origin would be blocked by the browser."""
    if provider.adapter in CONSENT_ADAPTERS:
        return render(
            request,
            "accounts/identity_providers/connecting.html",
            page_context(
                account,
                page_title="Connecting Identity Provider",
                breadcrumbs=[
                    ("Identity Providers Settings", list_url(account)),
                    (provider.name, provider_url(account, provider)),
                ],
                provider=provider,
                connect_url=connect_url(account, provider),
            ),
        )
    return HttpResponseRedirect(provider_url(account, provider))


@admin_required
@require_http_methods(["GET", "POST"])
def provider_adapter_new(request: PortalRequest, account: Account, adapter: str) -> HttpResponse:
    if adapter not in adapters_for_creation():
        return not_found(request)
    if adapter in AuthProvider.SYNC_ADAPTERS and not feature_enabled(account, "idp_sync"):
        # The sync adapters fall back to plain OpenID Connect with the upsell (§4.13.2).
        if adapter in UPSELL_ADAPTERS:
            return HttpResponseRedirect(_new_url(account, adapter))
        return not_found(request)
    upsell = request.GET.get("provider") if adapter == A.OPENID_CONNECT else None
    upsell = upsell if upsell in UPSELL_ADAPTERS else None

    def save(form: ProviderForm) -> HttpResponse:
        provider = provider_create(
            subject=request.subject,
            name=form.cleaned_data["name"],
            adapter=adapter,
            adapter_config=form.adapter_config(),
            id=form.cleaned_data["id"],
            awaiting_consent=adapter in CONSENT_ADAPTERS,
        )
        return _after_save(request, account, provider)

    return edit_page(
        request,
        FORMS[adapter](request.POST if request.method == "POST" else None),
        template=FORM_TEMPLATE,
        context=_form_context(
            account,
            page_title="New Identity Provider",
            breadcrumbs=[
                ("Identity Providers Settings", list_url(account)),
                ("Create Identity Provider", account_url(account, "identity_provider_new")),
                (ADAPTER_LABELS[adapter], None),
            ],
            upsell=upsell,
        ),
        save=save,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def provider_edit(request: PortalRequest, account: Account, adapter: str, id: str) -> HttpResponse:
    subject = request.subject
    provider = provider_get_for_adapter(subject, provider_id=id, adapter=adapter)

    def save(form: ProviderForm) -> HttpResponse:
        updated = provider_update(
            subject=subject,
            provider=provider,
            name=form.cleaned_data["name"],
            adapter_config=form.adapter_config(),
        )
        return _after_save(request, account, updated)

    return edit_page(
        request,
        FORMS[adapter](request.POST if request.method == "POST" else None, provider=provider),
        template=FORM_TEMPLATE,
        context=_form_context(
            account,
            page_title=f"Edit {provider.name}",
            breadcrumbs=[
                ("Identity Providers Settings", list_url(account)),
                (provider.name, provider_url(account, provider)),
                ("Edit", None),
            ],
        ),
        save=save,
    )
