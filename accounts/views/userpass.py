"""Username and password sign-in (portal.md §3.7), with brute-force limits.

Every failure answers "Invalid username or password." — unknown user, wrong password, disabled
actor, and also a rate-limited attempt (no lockout oracle: a limited attempt looks exactly like a
wrong password, and the password is still hashed so the timing matches). Failures are counted
per IP + username (5 per 15 minutes) and per IP (30 per 15 minutes); a success clears the
IP + username counter.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_POST

from accounts.models import Account, AuthProvider
from accounts.selectors.providers import active_provider_get
from accounts.services.sign_in import userpass_password_check_dummy, userpass_verify
from accounts.sign_in.flow import sign_in_failed, signed_in
from accounts.sign_in.params import SignInParams
from accounts.views.sign_in import remember_username
from firezone.errors import Unauthorized
from firezone.web import ratelimit
from firezone.web.pages import account_url
from firezone.web.session import request_context, with_account

MSG_INVALID = "Invalid username or password."
MSG_METHOD = "You may not use this method to sign in."
MSG_INVALID_REQUEST = "Invalid request."
USERNAME_MAX_LENGTH = 160


@require_POST
@with_account
def verify_credentials(request: HttpRequest, account: Account, provider_id: str) -> HttpResponse:
    params = SignInParams.from_request(request)
    username = request.POST.get("userpass[provider_identifier]")
    password = request.POST.get("userpass[secret]")
    if not isinstance(username, str) or not isinstance(password, str):
        messages.error(request, MSG_INVALID_REQUEST)
        return HttpResponseRedirect(params.url(account_url(account, "sign_in")))
    provider = active_provider_get(account=account, provider_id=provider_id)
    if provider is None or provider.adapter != AuthProvider.Adapter.USERPASS:
        return sign_in_failed(request, account, MSG_METHOD, params)

    username = username.strip()[:USERNAME_MAX_LENGTH]
    ip = request_context(request, "browser").remote_ip
    user_key = (ip, provider.pk, username)
    limited = ratelimit.USERPASS_FAILURES_PER_USER.exceeded(
        *user_key
    ) or ratelimit.USERPASS_FAILURES_PER_IP.exceeded(ip)
    identity = None
    if limited:
        userpass_password_check_dummy(password=password)
    else:
        try:
            identity = userpass_verify(provider=provider, identifier=username, password=password)
        except Unauthorized:
            identity = None
    if identity is None:
        ratelimit.USERPASS_FAILURES_PER_USER.hit(*user_key)
        ratelimit.USERPASS_FAILURES_PER_IP.hit(ip)
        response = sign_in_failed(request, account, MSG_INVALID, params)
        remember_username(response, username)
        return response
    ratelimit.USERPASS_FAILURES_PER_USER.reset(*user_key)
    return signed_in(request, account=account, identity=identity, params=params)
