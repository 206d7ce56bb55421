"""After a successful authentication (portal.md §3.9) and the device hand-off (§3.10).

Every sign-in method (email code, username/password, OpenID Connect) ends in `signed_in`:

* the account goes first in the `fz_recent_account_ids` cookie (signed, 1 year, 5 ids);
* browser context (no `as=client`): a plain `account_user` is refused ("You must have the admin
  role…") *before* any token is created (§9 item 14); an admin gets a browser token (10 h or the
  IdP's earlier expiry), a fresh session key (`cycle_key`, fixation protection), the token in the
  multi-account session, and a redirect to an in-account `redirect_to` or `/<slug>/sites`;
* client context (`as=client`): `nonce` and `state` are required (a dedicated message, §9 item
  2); the client token (7 days) is created with the app's nonce and never stored in the
  browser; its fragment (the part after the nonce, starting with ".") goes into the short-lived
  `fz_client_auth` cookie (signed, 2 min, SameSite=Strict) and a small "Sign in successful." page
  refreshes to `/<slug>/sign_in/client_redirect`, which hands it to the app's URL scheme.

Failures go through `sign_in_failed`: an error flash and back to `/<account>?<params>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.models import Account, AuthIdentity
from accounts.services.sign_in import session_token_create
from accounts.sign_in.params import SignInParams
from firezone.errors import DomainError
from firezone.web.pages import account_url
from firezone.web.session import (
    post_sign_in_url,
    request_context,
    store_session,
)

RECENT_ACCOUNTS_COOKIE = "fz_recent_account_ids"
RECENT_ACCOUNTS_SALT = "fz_recent_account_ids"
RECENT_ACCOUNTS_MAX = 5
RECENT_ACCOUNTS_MAX_AGE = 365 * 24 * 3600

CLIENT_AUTH_COOKIE = "fz_client_auth"
CLIENT_AUTH_SALT = "fz_client_auth"
CLIENT_AUTH_MAX_AGE = 120

MSG_ADMIN_ONLY = "You must have the admin role in Firezone to sign in to the admin portal."
MSG_CLIENT_PARAMS = (
    "The sign in request from your Firezone client is incomplete or invalid. "
    "Please start the sign in process from the client again."
)
MSG_ACCOUNT_DISABLED = (
    "This account has been disabled. Please contact your administrator to re-enable it."
)
MSG_NOT_SIGNED_IN = "You could not be signed in. Please try again."


def _secure() -> bool:
    return bool(settings.SESSION_COOKIE_SECURE)


# --- recently used accounts ----------------------------------------------------------------------


def recent_account_ids(request: HttpRequest) -> list[str]:
    """Account ids from the signed `fz_recent_account_ids` cookie, newest first."""
    raw = request.COOKIES.get(RECENT_ACCOUNTS_COOKIE)
    if not raw:
        return []
    try:
        ids = signing.loads(raw, salt=RECENT_ACCOUNTS_SALT)
    except signing.BadSignature:
        return []
    if not isinstance(ids, list):
        return []
    return [i for i in ids if isinstance(i, str)][:RECENT_ACCOUNTS_MAX]


def set_recent_account_ids(response: HttpResponse, ids: list[str]) -> None:
    response.set_cookie(
        RECENT_ACCOUNTS_COOKIE,
        signing.dumps(ids[:RECENT_ACCOUNTS_MAX], salt=RECENT_ACCOUNTS_SALT),
        max_age=RECENT_ACCOUNTS_MAX_AGE,
        secure=_secure(),
        httponly=True,
        samesite="Lax",
    )


def remember_account(request: HttpRequest, response: HttpResponse, account: Account) -> None:
    account_id = str(account.pk)
    ids = [account_id] + [i for i in recent_account_ids(request) if i != account_id]
    set_recent_account_ids(response, ids)


# --- client hand-off cookie ----------------------------------------------------------------------


def client_auth_read(request: HttpRequest) -> dict[str, str] | None:
    """The `fz_client_auth` payload if present, authentic and at most 2 minutes old."""
    raw = request.COOKIES.get(CLIENT_AUTH_COOKIE)
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=CLIENT_AUTH_SALT, max_age=CLIENT_AUTH_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    keys = ("actor_name", "fragment", "identity_provider_identifier", "state")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in keys):
        return None
    return {k: data[k] for k in keys}


def _client_auth_cookie(response: HttpResponse, payload: dict[str, Any]) -> None:
    response.set_cookie(
        CLIENT_AUTH_COOKIE,
        signing.dumps(payload, salt=CLIENT_AUTH_SALT),
        max_age=CLIENT_AUTH_MAX_AGE,
        secure=_secure(),
        httponly=True,
        samesite="Strict",
    )


# --- outcomes ------------------------------------------------------------------------------------


def sign_in_failed(
    request: HttpRequest, account: Account, message: str, params: SignInParams
) -> HttpResponse:
    """Error flash and back to the account's sign-in page, keeping the sign-in params."""
    messages.error(request, message)
    return HttpResponseRedirect(params.url(account_url(account, "sign_in")))


def signed_in(
    request: HttpRequest,
    *,
    account: Account,
    identity: AuthIdentity,
    params: SignInParams,
    idp_expires_at: datetime | None = None,
) -> HttpResponse:
    """Finish a sign-in for a proven `identity` of `account` (§3.9, §3.10)."""
    if params.is_client:
        response = _client_signed_in(request, account, identity, params)
    else:
        response = _browser_signed_in(request, account, identity, params, idp_expires_at)
    remember_account(request, response, account)
    return response


def _browser_signed_in(
    request: HttpRequest,
    account: Account,
    identity: AuthIdentity,
    params: SignInParams,
    idp_expires_at: datetime | None,
) -> HttpResponse:
    if not identity.actor.is_admin:
        return sign_in_failed(request, account, MSG_ADMIN_ONLY, params)
    try:
        issued = session_token_create(
            identity=identity,
            context=request_context(request, "browser"),
            idp_expires_at=idp_expires_at,
        )
    except DomainError:  # identity disabled meanwhile, or the IdP session already expired
        return sign_in_failed(request, account, MSG_NOT_SIGNED_IN, params)
    # A new session id at every sign-in: a planted session cookie never becomes authenticated.
    request.session.cycle_key()
    store_session(request, account, issued.encoded)
    return HttpResponseRedirect(post_sign_in_url(account, params))


def _client_signed_in(
    request: HttpRequest, account: Account, identity: AuthIdentity, params: SignInParams
) -> HttpResponse:
    if not params.nonce or not params.state:
        return sign_in_failed(request, account, MSG_CLIENT_PARAMS, params)
    if account.is_disabled:
        return sign_in_failed(request, account, MSG_ACCOUNT_DISABLED, params)
    try:
        issued = session_token_create(
            identity=identity,
            context=request_context(request, "client"),
            nonce=params.nonce,
        )
    except DomainError:  # an invalid nonce (a "." in it), or the identity went away
        return sign_in_failed(request, account, MSG_CLIENT_PARAMS, params)
    response = render(
        request,
        "accounts/client_signed_in.html",
        {
            "account": account,
            "redirect_url": account_url(account, "client_redirect"),
            "page_title": "Sign in successful",
        },
    )
    _client_auth_cookie(
        response,
        {
            "actor_name": identity.actor.name,
            # The app holds the nonce; it only ever receives the rest (starting with ".").
            "fragment": issued.encoded[len(params.nonce) :],
            "identity_provider_identifier": identity.provider_identifier,
            "state": params.state,
        },
    )
    return response
