"""OpenID Connect sign-in (portal.md §3.8): the redirect to the IdP and its callback.

`GET /<account>/sign_in/providers/<provider_id>/redirect?<sign-in params>` sends the browser to
the IdP with a fresh `state`, PKCE challenge and OIDC `nonce`; those secrets and the sign-in
params wait in the signed cookie `fz_auth_state_<provider_id>` (30 min, SameSite=Lax so it
survives the IdP's top-level redirect back, HttpOnly).

`GET /<account>/sign_in/providers/<provider_id>/handle_callback?state=&code=` consumes that
cookie (deleted whatever happens), compares `state` in constant time, and lets `accounts.oidc`
exchange the code and verify the ID token; the domain picks the identity
(`identity_oidc_signed_in`), and `accounts.sign_in.flow.signed_in` finishes (§3.9, §3.10).

Failures flash the spec's texts and return to the sign-in page at the account segment the URL
used (the callback URL always uses the account id).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts import oidc
from accounts.models import Account, AuthProvider
from accounts.selectors.providers import active_provider_get
from accounts.services.oidc import identity_oidc_signed_in
from accounts.sign_in import flow
from accounts.sign_in.params import SignInParams
from accounts.validation import is_uuid
from firezone.errors import Unauthorized
from firezone.web.session import account_from_path

logger = logging.getLogger(__name__)

STATE_COOKIE_PREFIX = "fz_auth_state_"
STATE_COOKIE_MAX_AGE = 30 * 60

MSG_METHOD = "You may not use this method to sign in."
MSG_SESSION_EXPIRED = "Your session has expired, please try again."
MSG_INVALID_REQUEST = "Invalid request."


def state_cookie_name(provider_id: Any) -> str:
    return f"{STATE_COOKIE_PREFIX}{provider_id}"


def _state_salt(provider_id: Any) -> str:
    # Bound to the provider: one provider's cookie is worthless under another's name.
    return f"fz_auth_state.oidc.{provider_id}"


def callback_url(account: Account, provider: AuthProvider) -> str:
    """The `redirect_uri` registered at the IdP: always the account **id** (§3.8)."""
    base = str(settings.EXTERNAL_URL).rstrip("/")
    path = reverse("oidc_callback", kwargs={"account": account.pk, "provider_id": provider.pk})
    return f"{base}{path}"


def _set_state(
    response: HttpResponse,
    provider: AuthProvider,
    request_: oidc.AuthorizationRequest,
    params: SignInParams,
) -> None:
    payload = {
        "state": request_.state,
        "code_verifier": request_.code_verifier,
        "nonce": request_.nonce,
        "params": params.as_dict(),
    }
    response.set_cookie(
        state_cookie_name(provider.pk),
        signing.dumps(payload, salt=_state_salt(provider.pk), compress=True),
        max_age=STATE_COOKIE_MAX_AGE,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=True,
        samesite="Lax",
    )


def _read_state(request: HttpRequest, provider_id: str) -> dict[str, Any] | None:
    raw = request.COOKIES.get(state_cookie_name(provider_id))
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=_state_salt(provider_id), max_age=STATE_COOKIE_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    keys = ("state", "code_verifier", "nonce")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in keys):
        return None
    return data


def _delete_state(response: HttpResponse, provider_id: str) -> None:
    response.delete_cookie(state_cookie_name(provider_id), samesite="Lax")


def _back(request: HttpRequest, segment: str, message: str, params: SignInParams) -> HttpResponse:
    """Error flash and back to `/<segment>?<params>` (segment = the account as in the URL)."""
    messages.error(request, message)
    return HttpResponseRedirect(params.url(reverse("sign_in", kwargs={"account": segment})))


def _oidc_provider(account: Account, provider_id: str) -> AuthProvider | None:
    provider = active_provider_get(account=account, provider_id=provider_id)
    return provider if provider is not None and oidc.is_oidc(provider) else None


@require_GET
def redirect_to_idp(request: HttpRequest, account: str, provider_id: str) -> HttpResponse:
    found = account_from_path(account)
    params = SignInParams.from_request(request)
    provider = _oidc_provider(found, provider_id)
    if provider is None:
        return _back(request, account, MSG_METHOD, params)
    try:
        auth = oidc.authorization_request(provider, redirect_uri=callback_url(found, provider))
    except oidc.OIDCError as exc:
        logger.warning("OIDC redirect failed for provider %s: %s", provider.pk, exc.reason)
        return _back(request, account, exc.message, params)
    response = HttpResponseRedirect(auth.url)
    _set_state(response, provider, auth, params)
    return response


def _invalid_request_message(request: HttpRequest) -> str:
    """ "Invalid request. error: {e}. error_description: {d}" with only the parts present."""
    parts = [MSG_INVALID_REQUEST]
    error = request.GET.get("error")
    description = request.GET.get("error_description")
    if error:
        parts.append(f"error: {error[:200]}.")
    if description:
        parts.append(f"error_description: {description[:500]}")
    return " ".join(parts)


@require_GET
def handle_callback(request: HttpRequest, account: str, provider_id: str) -> HttpResponse:
    found = account_from_path(account)
    stored = _read_state(request, provider_id) if is_uuid(provider_id) else None
    # The sign-in params travelled in our own signed cookie, not through the IdP.
    params = SignInParams.from_mapping(stored.get("params")) if stored else SignInParams()
    response = _callback(request, found, account, provider_id, stored, params)
    if is_uuid(provider_id):
        _delete_state(response, provider_id)
    return response


def _callback(
    request: HttpRequest,
    account: Account,
    segment: str,
    provider_id: str,
    stored: dict[str, Any] | None,
    params: SignInParams,
) -> HttpResponse:
    state, code = request.GET.get("state"), request.GET.get("code")
    if not state or not code:
        return _back(request, segment, _invalid_request_message(request), params)
    if stored is None or not oidc.states_equal(stored["state"], state):
        return _back(request, segment, MSG_SESSION_EXPIRED, params)
    provider = _oidc_provider(account, provider_id)
    if provider is None:
        return _back(request, segment, MSG_METHOD, params)
    try:
        result = oidc.finish_sign_in(
            provider,
            code=code,
            redirect_uri=callback_url(account, provider),
            code_verifier=stored["code_verifier"],
            nonce=stored["nonce"],
            response_issuer=request.GET.get("iss"),
        )
        identity = identity_oidc_signed_in(
            provider=provider,
            provider_identifier=result.identifier,
            email=result.email,
            email_verified=result.email_verified,
            provider_state=result.provider_state(),
        )
    except oidc.OIDCError as exc:
        logger.info("OIDC sign-in refused for provider %s: %s", provider.pk, exc.reason)
        return _back(request, segment, exc.message, params)
    except Unauthorized as exc:
        logger.info("OIDC sign-in refused for provider %s: %s", provider.pk, exc.reason)
        return _back(request, segment, oidc.MSG_NOT_ALLOWED, params)
    return flow.signed_in(
        request,
        account=account,
        identity=identity,
        params=params,
        idp_expires_at=result.expires_at,
    )
