"""Admin pages: Settings → Identity Providers (portal.md §4.13).

* the list with the "Default Authentication Provider" form (§4.13.1) and the adapter chooser
  (§4.13.2);
* one new/edit form per IdP adapter (§4.13.3, §4.13.4): OpenID Connect (with the directory sync
  upsell step for `?provider=<sync adapter>`), Google Workspace, Microsoft Entra, Okta, JumpCloud
  and Mock. A new IdP is saved disabled, waiting for the admin's OAuth consent, and the browser
  goes straight to the connect flow; Mock has no consent and is saved enabled;
* the detail pages (§4.13.5) with their events (disable, enable, delete, delete stale actors)
  and the "system" page of the email and username & password providers (§4.13.6, no delete);
* the connect flow (§4.13.7): `<adapter>/<id>/redirect` sends the admin to the IdP (state, PKCE
  and nonce in a signed cookie bound to this provider and admin), `<adapter>/<id>/handle_callback`
  verifies the answer with `accounts.oidc` (as sign-in does), gives the admin an identity at the
  provider and connects (enables) it.

Disabling or deleting the account's last active provider is refused with an error flash (§9
items 5 and 6); disabling also deletes the provider's tokens (the service does both).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authlib.common.urls import add_params_to_uri
from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from accounts import oidc
from accounts.features import feature_enabled
from accounts.forms.providers import ADAPTER_LABELS, FORMS, ProviderForm
from accounts.models import Account, AuthProvider
from accounts.selectors.groups import groups_count_by_provider
from accounts.selectors.identities import identities_count_by_provider
from accounts.selectors.providers import (
    provider_get,
    provider_get_for_adapter,
    provider_get_system,
    provider_list,
    provider_stale_actors_count,
)
from accounts.services.providers import (
    CONSENT_ADAPTERS,
    PENDING_ACCESS_TOKEN,
    adapters_for_creation,
    provider_assign_default,
    provider_clear_default,
    provider_connect_admin,
    provider_create,
    provider_delete,
    provider_delete_stale_actors,
    provider_disable,
    provider_enable,
    provider_update,
)
from firezone.errors import NotFound, Refused, Unauthorized, ValidationFailed
from firezone.web.pages import action_of, redirect_error, redirect_info, url
from firezone.web.session import admin_required, not_found
from firezone.web.tables import Column, LiveTable

logger = logging.getLogger(__name__)

A = AuthProvider.Adapter
SYSTEM_ADAPTERS = AuthProvider.SINGLETON_ADAPTERS
# Directory-sync adapters whose access is renewed with a refresh token (status rendering).
REFRESH_TOKEN_ADAPTERS = (A.GOOGLE_WORKSPACE, A.MICROSOFT_ENTRA, A.OKTA)
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
UPSELL_ADAPTERS = (A.GOOGLE_WORKSPACE, A.MICROSOFT_ENTRA, A.OKTA, A.JUMPCLOUD)

MSG_DEFAULT_CLEARED = "Default authentication provider cleared"
MSG_DEFAULT_SET = "Default authentication provider set to {name}"
MSG_DEFAULT_FAILED = (
    "Failed to update default auth provider. Contact support if this issue persists."
)
MSG_DISABLED = "Identity provider was disabled."
MSG_ENABLED = "Identity provider was enabled."
MSG_DELETED = "Identity provider was deleted."
MSG_STALE_DELETED = "{n} stale Actor(s) deleted."
MSG_WORKOS_OFF = "Directory sync through WorkOS is not configured for this Firezone deployment."

# Connect flow (§4.13.7).
CONNECT_COOKIE_PREFIX = "fz_idp_connect_"
CONNECT_COOKIE_MAX_AGE = 30 * 60
MSG_NO_PROVIDER = "Provider does not exist."
MSG_NO_OIDC_PROVIDER = "Provider is disabled or does not exist."
MSG_SESSION_EXPIRED = "Your session has expired, please try again."
MSG_EXPIRED_TOKEN = "The provider returned an expired token, please try again."
MSG_INVALID_TOKEN = "The provider returned an invalid token, please try again."
MSG_CONNECT_FAILED = "Failed to connect a provider, please try again."
MSG_NOT_ALLOWED = "You may not authenticate to this account."
MSG_BEHAVIOUR = "There is an error with provider behaviour:"


# --- URLs -----------------------------------------------------------------------------------------


def list_url(account: Account) -> str:
    return url(account, "/settings/identity_providers")


def provider_url(account: Account, provider: AuthProvider) -> str:
    """The adapter-specific page (the "system" page for email and username & password)."""
    kind = "system" if provider.adapter in SYSTEM_ADAPTERS else provider.adapter
    return url(account, f"/settings/identity_providers/{kind}/{provider.pk}")


def connect_url(account: Account, provider: AuthProvider) -> str:
    return f"{provider_url(account, provider)}/redirect"


def _external(path: str) -> str:
    return f"{str(settings.EXTERNAL_URL).rstrip('/')}{path}"


def redirect_uris(account: Account, adapter: str, provider_id: Any) -> list[str]:
    """The two URLs to whitelist at the IdP (step 1): sign-in and connect callbacks, always
    with the account **id**."""
    return [
        _external(f"/{account.pk}/sign_in/providers/{provider_id}/handle_callback"),
        _external(
            f"/{account.pk}/settings/identity_providers/{adapter}/{provider_id}/handle_callback"
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
        healthy=not (failed > 3 or paused),
        identities=identities,
        groups=groups,
        identities_text=identities_text,
        groups_text=groups_text,
        actors_url=url(account, f"/actors?actors_filter[provider_id]={provider.pk}"),
        groups_url=url(account, f"/groups?groups_filter[provider_id]={provider.pk}"),
        error=error if custom and show_error else None,
    )


def adapter_label(provider: AuthProvider) -> str:
    return ADAPTER_LABELS.get(provider.adapter, provider.adapter)


def is_default(provider: AuthProvider) -> bool:
    return provider.assigned_default_at is not None and not provider.is_disabled


# --- list (§4.13.1) -------------------------------------------------------------------------------


PROVIDERS_TABLE = LiveTable(
    id="providers",
    columns=[Column("Name", order="name"), Column("Type"), Column("Status"), Column("Sync Status")],
    row_template="accounts/identity_providers/_row.html",
    orders={"name": "name", "inserted_at": "inserted_at"},
    default_order=("inserted_at", "asc"),
    empty_message="No identity providers to display",
    empty_template="accounts/identity_providers/_empty.html",
    live_topics=("changes:auth_providers",),
)


def _page_context(request: HttpRequest, account: Account, **context: Any) -> dict[str, Any]:
    return {"account": account, "list_url": list_url(account), **context}


@admin_required
@require_http_methods(["GET", "POST"])
def providers_list(request: HttpRequest, account: Account) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    if action_of(request) == "default_provider":
        return _set_default(request, account)
    if request.method == "POST":
        return not_found(request)
    providers = provider_list(subject)
    page = PROVIDERS_TABLE.page(request, providers)
    identities = identities_count_by_provider(subject)
    groups = groups_count_by_provider(subject)
    for row in page.rows:
        row.url = provider_url(account, row)
        row.type_label = adapter_label(row)
        row.default_badge = is_default(row)
        row.status = provider_status(account, row)
        row.sync = sync_status(account, row, identities.get(row.pk, 0), groups.get(row.pk, 0))
    candidates = [p for p in providers if p.adapter not in SYSTEM_ADAPTERS]
    current = next((p for p in candidates if is_default(p)), None)
    return render(
        request,
        "accounts/identity_providers/list.html",
        _page_context(
            request,
            account,
            page_title="Identity Providers",
            breadcrumbs=[("Identity Providers Settings", list_url(account))],
            page=page,
            candidates=candidates,
            current_default=current,
            new_url=url(account, "/settings/identity_providers/new"),
        ),
    )


def _set_default(request: HttpRequest, account: Account) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    to = list_url(account)
    choice = request.POST.get("provider_id", "").strip()
    try:
        if choice in ("", "none"):
            provider_clear_default(subject=subject)
            return redirect_info(request, to, MSG_DEFAULT_CLEARED)
        provider = provider_get(subject, provider_id=choice)
        provider = provider_assign_default(subject=subject, provider=provider)
    except (NotFound, Refused, ValidationFailed, Unauthorized) as exc:
        logger.info("default provider not updated: %s", exc)
        return redirect_error(request, to, MSG_DEFAULT_FAILED)
    return redirect_info(request, to, MSG_DEFAULT_SET.format(name=provider.name))


# --- choose the adapter (§4.13.2) -----------------------------------------------------------------


def _offered(account: Account) -> list[str]:
    """IdP adapters the deployment offers; Mock only with directory sync (it is a sync
    adapter and has no OpenID Connect fallback)."""
    enabled = set(adapters_for_creation())
    offered = [adapter for adapter, _label, _sync in CHOOSER if adapter in enabled]
    if not feature_enabled(account, "idp_sync"):
        offered = [a for a in offered if a != A.MOCK]
    return offered


def _new_url(account: Account, adapter: str) -> str:
    base = "/settings/identity_providers"
    if adapter in UPSELL_ADAPTERS and not feature_enabled(account, "idp_sync"):
        return url(account, f"{base}/openid_connect/new?provider={adapter}")
    return url(account, f"{base}/{adapter}/new")


@admin_required
@require_GET
def provider_new(request: HttpRequest, account: Account) -> HttpResponse:
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
        _page_context(
            request,
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


def _form_page(
    request: HttpRequest,
    account: Account,
    form: ProviderForm,
    *,
    page_title: str,
    breadcrumbs: list[tuple[str, str | None]],
    upsell: str | None = None,
) -> HttpResponse:
    return render(
        request,
        "accounts/identity_providers/form.html",
        _page_context(
            request,
            account,
            page_title=page_title,
            breadcrumbs=breadcrumbs,
            form=form,
            adapter=form.adapter,
            adapter_label=ADAPTER_LABELS[form.adapter],
            redirect_uris=redirect_uris(account, form.adapter, form.provider_id),
            upsell=upsell,
            upsell_label=ADAPTER_LABELS.get(upsell or "", ""),
        ),
    )


def _after_save(request: HttpRequest, account: Account, provider: AuthProvider) -> HttpResponse:
    """IdPs go on to the admin's OAuth consent; Mock straight to its page.

    The consent starts with a full-page navigation, not a redirect of the form post: the CSP's
    `form-action 'self'` also covers the redirects a form submission follows, so a post that
    ends at the IdP's origin would be blocked by the browser."""
    if provider.adapter in CONSENT_ADAPTERS:
        return render(
            request,
            "accounts/identity_providers/connecting.html",
            _page_context(
                request,
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
def provider_adapter_new(request: HttpRequest, account: Account, adapter: str) -> HttpResponse:
    if adapter not in adapters_for_creation():
        return not_found(request)
    if adapter in AuthProvider.SYNC_ADAPTERS and not feature_enabled(account, "idp_sync"):
        # The sync adapters fall back to plain OpenID Connect with the upsell (§4.13.2).
        if adapter in UPSELL_ADAPTERS:
            return HttpResponseRedirect(_new_url(account, adapter))
        return not_found(request)
    upsell = request.GET.get("provider") if adapter == A.OPENID_CONNECT else None
    upsell = upsell if upsell in UPSELL_ADAPTERS else None
    form_class = FORMS[adapter]
    form = form_class(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            provider = provider_create(
                subject=request.subject,  # type: ignore[attr-defined]
                name=form.cleaned_data["name"],
                adapter=adapter,
                adapter_config=form.adapter_config(),
                id=form.cleaned_data["id"],
                awaiting_consent=adapter in CONSENT_ADAPTERS,
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc)
        else:
            return _after_save(request, account, provider)
    return _form_page(
        request,
        account,
        form,
        page_title="New Identity Provider",
        breadcrumbs=[
            ("Identity Providers Settings", list_url(account)),
            ("Create Identity Provider", url(account, "/settings/identity_providers/new")),
            (ADAPTER_LABELS[adapter], None),
        ],
        upsell=upsell,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def provider_edit(request: HttpRequest, account: Account, adapter: str, id: str) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    provider = provider_get_for_adapter(subject, provider_id=id, adapter=adapter)
    form = FORMS[adapter](request.POST if request.method == "POST" else None, provider=provider)
    if request.method == "POST" and form.is_valid():
        try:
            provider = provider_update(
                subject=subject,
                provider=provider,
                name=form.cleaned_data["name"],
                adapter_config=form.adapter_config(),
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc)
        else:
            return _after_save(request, account, provider)
    return _form_page(
        request,
        account,
        form,
        page_title=f"Edit {provider.name}",
        breadcrumbs=[
            ("Identity Providers Settings", list_url(account)),
            (provider.name, provider_url(account, provider)),
            ("Edit", None),
        ],
    )


# --- detail pages (§4.13.5, §4.13.6) --------------------------------------------------------------


def _event(request: HttpRequest, account: Account, provider: AuthProvider) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    here = provider_url(account, provider)
    action = action_of(request)
    system = provider.adapter in SYSTEM_ADAPTERS
    try:
        if action == "disable":
            provider_disable(subject=subject, provider=provider)
            return redirect_info(request, here, MSG_DISABLED)
        if action == "enable":
            provider_enable(subject=subject, provider=provider)
            return redirect_info(request, here, MSG_ENABLED)
        if action == "delete" and not system:
            provider_delete(subject=subject, provider=provider)
            return redirect_info(request, list_url(account), MSG_DELETED)
        if action == "delete_stale_actors" and provider.is_sync_adapter:
            count = provider_delete_stale_actors(subject=subject, provider=provider)
            return redirect_info(request, here, MSG_STALE_DELETED.format(n=count))
        if action == "setup_sync" and provider.adapter == A.JUMPCLOUD:
            # WorkOS directory sync is not wired in this deployment (no WorkOS client).
            return redirect_error(request, here, MSG_WORKOS_OFF)
    except Refused as exc:
        return redirect_error(request, here, exc.message)
    return not_found(request)


def _detail_context(
    request: HttpRequest, account: Account, provider: AuthProvider
) -> dict[str, Any]:
    subject = request.subject  # type: ignore[attr-defined]
    identities = identities_count_by_provider(subject).get(provider.pk, 0)
    groups = groups_count_by_provider(subject).get(provider.pk, 0)
    config = provider.adapter_config or {}
    pending = (provider.adapter_state or {}).get("status") == PENDING_ACCESS_TOKEN
    return _page_context(
        request,
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
        edit_url=f"{provider_url(account, provider)}/edit",
        connect_url=connect_url(account, provider),
        pending=pending,
        connectable=provider.adapter in CONSENT_ADAPTERS,
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
def provider_detail(request: HttpRequest, account: Account, adapter: str, id: str) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
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
def system_provider_detail(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    provider = provider_get_system(subject, provider_id=id)
    if request.method == "POST":
        return _event(request, account, provider)
    return render(
        request,
        "accounts/identity_providers/system.html",
        _detail_context(request, account, provider),
    )


# --- connect flow (§4.13.7) --------------------------------------------------------------------


def connect_callback_url(account: Account, provider: AuthProvider) -> str:
    return redirect_uris(account, provider.adapter, provider.pk)[1]


def connect_cookie_name(provider_id: Any) -> str:
    return f"{CONNECT_COOKIE_PREFIX}{provider_id}"


def _connect_salt(provider_id: Any) -> str:
    # Bound to the provider: a sign-in cookie or another provider's cookie is worthless here.
    return f"fz_idp_connect.{provider_id}"


def _connectable(request: HttpRequest, adapter: str, id: str) -> AuthProvider | None:
    try:
        provider = provider_get_for_adapter(
            request.subject,  # type: ignore[attr-defined]
            provider_id=id,
            adapter=adapter,
        )
    except NotFound:
        return None
    return provider if provider.adapter in CONSENT_ADAPTERS else None


@admin_required
@require_GET
def provider_connect_redirect(
    request: HttpRequest, account: Account, adapter: str, id: str
) -> HttpResponse:
    provider = _connectable(request, adapter, id)
    if provider is None:
        return redirect_error(request, list_url(account), MSG_NO_PROVIDER)
    try:
        auth = oidc.authorization_request(
            provider, redirect_uri=connect_callback_url(account, provider)
        )
    except oidc.OIDCError as exc:
        logger.warning("IdP connect redirect failed for provider %s: %s", provider.pk, exc.reason)
        return redirect_error(request, list_url(account), exc.message)
    target = auth.url
    if provider.adapter == A.GOOGLE_WORKSPACE:
        # Google hands out a refresh token only on an explicit consent.
        target = add_params_to_uri(target, [("prompt", "consent")])
    response = HttpResponseRedirect(target)
    payload = {
        "state": auth.state,
        "code_verifier": auth.code_verifier,
        "nonce": auth.nonce,
        "actor_id": str(request.subject.actor_id),  # type: ignore[attr-defined]
    }
    response.set_cookie(
        connect_cookie_name(provider.pk),
        signing.dumps(payload, salt=_connect_salt(provider.pk), compress=True),
        max_age=CONNECT_COOKIE_MAX_AGE,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=True,
        samesite="Lax",  # sent on the IdP's top-level redirect back
    )
    return response


def _read_connect_state(request: HttpRequest, provider_id: str) -> dict[str, Any] | None:
    raw = request.COOKIES.get(connect_cookie_name(provider_id))
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=_connect_salt(provider_id), max_age=CONNECT_COOKIE_MAX_AGE)
    except signing.BadSignature:
        return None
    keys = ("state", "code_verifier", "nonce", "actor_id")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in keys):
        return None
    return data


@admin_required
@require_GET
def provider_connect_callback(
    request: HttpRequest, account: Account, adapter: str, id: str
) -> HttpResponse:
    stored = _read_connect_state(request, id)
    response = _connect_callback(request, account, adapter, id, stored)
    response.delete_cookie(connect_cookie_name(id), samesite="Lax")
    return response


def _invalid_request_message(request: HttpRequest) -> str:
    parts = ["Invalid request."]
    error = request.GET.get("error")
    description = request.GET.get("error_description")
    if error:
        parts.append(f"error: {error[:200]}.")
    if description:
        parts.append(f"error_description: {description[:500]}")
    return " ".join(parts)


def _connect_callback(
    request: HttpRequest,
    account: Account,
    adapter: str,
    id: str,
    stored: dict[str, Any] | None,
) -> HttpResponse:
    subject = request.subject  # type: ignore[attr-defined]
    plain = adapter == A.OPENID_CONNECT
    provider = _connectable(request, adapter, id)
    if provider is None:
        return redirect_error(
            request, list_url(account), MSG_NO_OIDC_PROVIDER if plain else MSG_NO_PROVIDER
        )
    back = provider_url(account, provider)
    state, code, error = (request.GET.get(k) for k in ("state", "code", "error"))
    if plain and error:
        description = request.GET.get("error_description", "")
        return redirect_error(
            request, back, f"Your IdP returned an error ({error[:200]}): {description[:500]}"
        )
    if not state or not code:
        return redirect_error(request, back, _invalid_request_message(request))
    if (
        stored is None
        or not oidc.states_equal(stored["state"], state)
        or stored["actor_id"] != str(subject.actor_id)
    ):
        return redirect_error(request, back, MSG_SESSION_EXPIRED)
    refused = MSG_CONNECT_FAILED if plain else MSG_NOT_ALLOWED
    try:
        result = oidc.finish_sign_in(
            provider,
            code=code,
            redirect_uri=connect_callback_url(account, provider),
            code_verifier=stored["code_verifier"],
            nonce=stored["nonce"],
            response_issuer=request.GET.get("iss"),
        )
        provider_connect_admin(
            subject=subject,
            provider=provider,
            provider_identifier=result.identifier,
            email=result.email,
            provider_state=result.provider_state(),
        )
    except oidc.NotAllowed as exc:
        logger.info("IdP connect refused for provider %s: %s", provider.pk, exc.reason)
        if exc.reason.startswith("invalid_id_token"):
            expired = "expired_token" in exc.reason
            return redirect_error(
                request, back, MSG_EXPIRED_TOKEN if expired else MSG_INVALID_TOKEN
            )
        return redirect_error(request, back, refused)
    except oidc.OIDCError as exc:
        logger.warning("IdP connect failed for provider %s: %s", provider.pk, exc.reason)
        return redirect_error(request, back, exc.message)
    except (Refused, NotFound) as exc:
        logger.info("IdP connect refused for provider %s: %s", provider.pk, exc)
        return redirect_error(request, back, refused)
    except ValidationFailed as exc:
        if plain:
            return redirect_error(request, back, refused)
        fields = "; ".join(f"{key} {', '.join(msgs)}" for key, msgs in exc.errors.items())
        return redirect_error(request, back, f"{MSG_BEHAVIOUR} {fields}")
    return HttpResponseRedirect(back)
