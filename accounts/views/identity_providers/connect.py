"""The IdP connect flow (portal.md §4.13.7): `<adapter>/<id>/redirect` sends the admin to the
IdP (state, PKCE and nonce in a signed cookie bound to this provider and admin),
`<adapter>/<id>/handle_callback` verifies the answer with `accounts.oidc` (as sign-in does), gives
the admin an identity at the provider and connects (enables) it."""

from __future__ import annotations

import logging
from typing import Any

from authlib.common.urls import add_params_to_uri
from django.http import HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_GET

from accounts import oidc
from accounts.models import Account, AuthProvider
from accounts.providers import CONSENT_ADAPTERS
from accounts.selectors.providers import provider_get_for_adapter
from accounts.services.providers import provider_connect_admin
from accounts.views.identity_providers.common import A, list_url, provider_url, redirect_uris
from accounts.views.oidc import finish_callback, invalid_request_message, secrets
from firezone.errors import NotFound, Refused, ValidationFailed
from firezone.web.cookies import FlowCookie
from firezone.web.pages import redirect_error
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required

logger = logging.getLogger(__name__)

# Connect flow (§4.13.7): the OIDC secrets and the admin who asked wait in this cookie.
CONNECT_COOKIE = FlowCookie(
    "fz_idp_connect_", "fz_idp_connect.", keys=("state", "code_verifier", "nonce", "actor_id")
)
connect_cookie_name = CONNECT_COOKIE.name
MSG_NO_PROVIDER = "Provider does not exist."
MSG_NO_OIDC_PROVIDER = "Provider is disabled or does not exist."
MSG_SESSION_EXPIRED = "Your session has expired, please try again."
MSG_EXPIRED_TOKEN = "The provider returned an expired token, please try again."
MSG_INVALID_TOKEN = "The provider returned an invalid token, please try again."
MSG_CONNECT_FAILED = "Failed to connect a provider, please try again."
MSG_NOT_ALLOWED = "You may not authenticate to this account."
MSG_BEHAVIOUR = "There is an error with provider behaviour:"

# --- connect flow (§4.13.7) --------------------------------------------------------------------


def connect_callback_url(account: Account, provider: AuthProvider) -> str:
    return redirect_uris(account, provider.adapter, provider.pk)[1]


def _connectable(request: PortalRequest, adapter: str, id: str) -> AuthProvider | None:
    try:
        provider = provider_get_for_adapter(
            request.subject,
            provider_id=id,
            adapter=adapter,
        )
    except NotFound:
        return None
    return provider if provider.adapter in CONSENT_ADAPTERS else None


@admin_required
@require_GET
def provider_connect_redirect(
    request: PortalRequest, account: Account, adapter: str, id: str
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
    actor_id = str(request.subject.actor_id)
    CONNECT_COOKIE.set(response, provider.pk, {**secrets(auth), "actor_id": actor_id})
    return response


@admin_required
@require_GET
def provider_connect_callback(
    request: PortalRequest, account: Account, adapter: str, id: str
) -> HttpResponse:
    stored = CONNECT_COOKIE.read(request, id)
    response = _connect_callback(request, account, adapter, id, stored)
    CONNECT_COOKIE.delete(response, id)
    return response


def _connect_callback(
    request: PortalRequest,
    account: Account,
    adapter: str,
    id: str,
    stored: dict[str, Any] | None,
) -> HttpResponse:
    subject = request.subject
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
        return redirect_error(request, back, invalid_request_message(request))
    if (
        stored is None
        or not oidc.states_equal(stored["state"], state)
        or stored["actor_id"] != str(subject.actor_id)
    ):
        return redirect_error(request, back, MSG_SESSION_EXPIRED)
    refused = MSG_CONNECT_FAILED if plain else MSG_NOT_ALLOWED
    try:
        result = finish_callback(
            request, provider, stored, redirect_uri=connect_callback_url(account, provider)
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
