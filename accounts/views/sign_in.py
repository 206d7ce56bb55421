"""`/<account>`: the account's sign-in page (portal.md §3.5, §3.10 step 1, §3.11)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import Account, AuthProvider
from accounts.oidc import OIDC_ADAPTERS
from accounts.selectors.providers import default_provider, providers_active
from accounts.sign_in.params import SignInParams
from firezone.web.context import trial_days_left
from firezone.web.pages import account_url
from firezone.web.session import (
    not_found,
    signed_out_only,
)

A = AuthProvider.Adapter
# The username to pre-fill after a failed attempt: a short signed cookie, so failed attempts of
# anonymous visitors never create server-side session rows.
USERPASS_IDENTIFIER_COOKIE = "fz_userpass_identifier"
USERPASS_IDENTIFIER_SALT = "fz_userpass_identifier"
USERPASS_IDENTIFIER_MAX_AGE = 60


def remember_username(response: HttpResponse, username: str) -> None:
    response.set_cookie(
        USERPASS_IDENTIFIER_COOKIE,
        signing.dumps(username, salt=USERPASS_IDENTIFIER_SALT),
        max_age=USERPASS_IDENTIFIER_MAX_AGE,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=True,
        samesite="Lax",
    )


def _remembered_username(request: HttpRequest) -> str:
    raw = request.COOKIES.get(USERPASS_IDENTIFIER_COOKIE)
    if not raw:
        return ""
    try:
        value = signing.loads(
            raw, salt=USERPASS_IDENTIFIER_SALT, max_age=USERPASS_IDENTIFIER_MAX_AGE
        )
    except signing.BadSignature:
        return ""
    return value if isinstance(value, str) else ""


def _trial_ended(account: Account) -> bool:
    """Less than a whole day left (billing_sync_jobs.md §1.10: days <= 0), as the app banner."""
    days = trial_days_left(account)
    return days is not None and days <= 0


@require_GET
@signed_out_only
def sign_in(request: HttpRequest, account: Account) -> HttpResponse:
    params = SignInParams.from_request(request)
    providers = list(providers_active(account=account))
    if not providers:
        return not_found(request)
    base = account_url(account, "sign_in")
    if params.is_client:
        default = default_provider(account=account)
        if default is not None and default.adapter in OIDC_ADAPTERS:
            query = request.GET.urlencode()
            target = account_url(account, "oidc_redirect", provider_id=default.pk)
            return HttpResponseRedirect(f"{target}?{query}" if query else target)

    userpass = next((p for p in providers if p.adapter == A.USERPASS), None)
    email = next((p for p in providers if p.adapter == A.EMAIL), None)
    oidc = [
        {"provider": p, "url": params.url(account_url(account, "oidc_redirect", provider_id=p.pk))}
        for p in providers
        if p.adapter in OIDC_ADAPTERS
    ]
    username = _remembered_username(request) if userpass else ""
    show_forms = not (account.is_disabled and params.is_client)
    response = render(
        request,
        "accounts/sign_in.html",
        {
            "page_title": "Sign In",
            "account": account,
            "params": params,
            "base": base,
            "oidc": oidc if show_forms else [],
            "userpass": userpass if show_forms else None,
            "email": email if show_forms else None,
            "username": username,
            "trial_ended": _trial_ended(account),
        },
    )
    if USERPASS_IDENTIFIER_COOKIE in request.COOKIES:
        response.delete_cookie(USERPASS_IDENTIFIER_COOKIE, samesite="Lax")
    return response
