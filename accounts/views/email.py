"""Email one-time code sign-in (portal.md §3.6): request, "Please check your email", verify.

* Request (`POST …/request_email_otp`): always the same answer and at least
  `SIGN_IN_EMAIL_MIN_SECONDS` (2 s) long, registered email or not. Limits are checked *before*
  a token is rotated (§9 item 23): 3 requests per email per 5 minutes (sliding; beyond it nothing
  is sent and earlier codes keep working) and a per-IP cap (an error flash that says nothing about
  the email). The browser keeps the signed fragment in the `fz_auth_state_<provider>` cookie.
* Verify (`GET …/verify_sign_in_token`): needs that cookie (same browser) and consumes it on
  every attempt, so after a wrong code the user must request a new email; the correct code
  submitted again then says "The sign in token is missing or expired. Please try again." (§3.6,
  §9 item 16). The domain service allows 3 attempts per code, 10 minutes (module docstring of
  accounts.services.sign_in); per-IP and per-email verification limits are added here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Account, AuthIdentity, AuthProvider
from accounts.selectors.providers import active_provider_get
from accounts.services.identities import EMAIL_MAX_LENGTH
from accounts.services.sign_in import (
    email_fake_fragment,
    email_identity_find,
    email_token_request,
    email_token_verify,
    email_token_verify_unknown,
)
from accounts.services.sign_in_emails import sign_in_token_email_send
from accounts.sign_in.flow import sign_in_failed, signed_in
from accounts.sign_in.params import SignInParams
from accounts.validation import is_uuid
from firezone.errors import DomainError, Unauthorized
from firezone.web import ratelimit
from firezone.web.pages import account_url
from firezone.web.session import (
    not_found,
    request_context,
    signed_out_only,
    with_account,
)

logger = logging.getLogger(__name__)

MSG_INVALID_EMAIL = "Invalid email address."
MSG_METHOD = "You may not use this method to sign in."
MSG_INVALID_REQUEST = "Invalid request."
MSG_RESENT = "Email was resent."
MSG_TRY_AGAIN = "Please try to sign in again."
MSG_MISSING = "The sign in token is missing or expired. Please try again."
MSG_INVALID = "The sign in token is invalid or expired."
MSG_TOO_MANY_REQUESTS = "Too many sign in requests. Please try again in a few minutes."
MSG_TOO_MANY_ATTEMPTS = "Too many sign in attempts. Please try again in a few minutes."

STATE_COOKIE_MAX_AGE = 30 * 60
SIGNED_EMAIL_MAX_AGE = 3600
SIGNED_EMAIL_SALT = "fz_signed_provider_identifier"


def state_cookie_name(provider_id: Any) -> str:
    return f"fz_auth_state_{provider_id}"


def _state_salt(provider_id: Any) -> str:
    return f"fz_auth_state_email:{provider_id}"


def _email_provider(account: Account, provider_id: str) -> AuthProvider | None:
    provider = active_provider_get(account=account, provider_id=provider_id)
    if provider is None or provider.adapter != AuthProvider.Adapter.EMAIL:
        return None
    return provider


def code_page_url(account: Account, provider_id: Any, email: str, params: SignInParams) -> str:
    return params.url(
        account_url(account, "email_code", provider_id=provider_id),
        signed_provider_identifier=signing.dumps(email, salt=SIGNED_EMAIL_SALT),
    )


def _pad(started: float) -> None:
    # Registered or not, sent or rate-limited: every request takes the same time.
    remaining = float(settings.SIGN_IN_EMAIL_MIN_SECONDS) - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


def _issue(
    request: HttpRequest,
    account: Account,
    provider: AuthProvider,
    identity: AuthIdentity | None,
    params: SignInParams,
) -> str | None:
    """Rotate the identity's code and mail it; the browser fragment, or None when nothing was
    sent (unknown email or refused)."""
    if identity is None:
        return None
    context = request_context(request, "email")
    try:
        _token, code, fragment = email_token_request(identity=identity, context=context)
    except DomainError:
        return None
    try:
        sign_in_token_email_send(
            account=account,
            provider=provider,
            identity=identity,
            code=code,
            params=params.as_dict(),
            context=context,
        )
    except Exception:  # the answer must not differ; the user can resend
        logger.exception("sending the sign in token to identity %s failed", identity.pk)
    return fragment


@require_POST
@with_account
def request_email_otp(request: HttpRequest, account: Account, provider_id: str) -> HttpResponse:
    params = SignInParams.from_request(request)
    value = request.POST.get("email[provider_identifier]")
    if not isinstance(value, str):
        messages.error(request, MSG_INVALID_REQUEST)
        return HttpResponseRedirect(account_url(account, "sign_in"))
    provider = _email_provider(account, provider_id)
    if provider is None:
        return sign_in_failed(request, account, MSG_METHOD, params)
    email = value.strip()
    if "@" not in email or len(email) > EMAIL_MAX_LENGTH:
        return sign_in_failed(request, account, MSG_INVALID_EMAIL, params)
    context = request_context(request, "email")
    if not ratelimit.EMAIL_REQUESTS_PER_IP.hit(context.remote_ip):
        return sign_in_failed(request, account, MSG_TOO_MANY_REQUESTS, params)

    started = time.monotonic()
    # Counted for unknown emails too, and checked before any token is rotated (§9 item 23):
    # beyond the limit nothing is sent and the browser keeps its current state cookie, so the
    # codes already mailed keep working.
    limited = not ratelimit.EMAIL_REQUESTS_PER_IDENTITY.hit(provider.pk, email)
    fragment = None
    if not limited:
        identity = email_identity_find(provider=provider, email=email)
        fragment = _issue(request, account, provider, identity, params)
        if fragment is None:
            fragment = email_fake_fragment(account_id=account.pk)
    _pad(started)

    if request.GET.get("resend") == "true":
        messages.info(request, MSG_RESENT)
    response = HttpResponseRedirect(code_page_url(account, provider.pk, email, params))
    if fragment is None:
        return response
    response.set_cookie(
        state_cookie_name(provider.pk),
        signing.dumps(
            {"fragment": fragment, "email": email, "params": params.as_dict()},
            salt=_state_salt(provider.pk),
        ),
        max_age=STATE_COOKIE_MAX_AGE,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=True,
        samesite="Lax",
    )
    return response


@require_GET
@signed_out_only
def code_page(request: HttpRequest, account: Account, provider_id: str) -> HttpResponse:
    params = SignInParams.from_request(request)
    signed = request.GET.get("signed_provider_identifier")
    if not signed:
        return not_found(request)
    try:
        email = signing.loads(signed, salt=SIGNED_EMAIL_SALT, max_age=SIGNED_EMAIL_MAX_AGE)
    except signing.BadSignature:
        email = None
    if not isinstance(email, str):
        return sign_in_failed(request, account, MSG_TRY_AGAIN, params)
    provider = _email_provider(account, provider_id)
    if provider is None:
        return sign_in_failed(request, account, MSG_METHOD, params)
    return render(
        request,
        "accounts/email_code.html",
        {
            "page_title": "Please check your email",
            "account": account,
            "provider": provider,
            "params": params,
            "email": email,
            "verify_url": account_url(account, "verify_sign_in_token", provider_id=provider.pk),
            "resend_url": account_url(
                account, "request_email_otp", provider_id=provider.pk, query={"resend": "true"}
            ),
            "sign_in_url": params.url(account_url(account, "sign_in")),
            "dev_mailbox": settings.DEBUG,
        },
    )


def _read_state(request: HttpRequest, provider_id: str) -> dict[str, Any] | None:
    raw = request.COOKIES.get(state_cookie_name(provider_id))
    if not raw:
        return None
    try:
        state = signing.loads(raw, salt=_state_salt(provider_id), max_age=STATE_COOKIE_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("fragment"), str):
        return None
    if not isinstance(state.get("email"), str):
        return None
    return state


def _identity_for(provider: AuthProvider, identity_id: str) -> AuthIdentity | None:
    if is_uuid(identity_id):
        identity = (
            AuthIdentity.objects.select_related("actor", "provider", "account")
            .filter(pk=identity_id, provider_id=provider.pk, account_id=provider.account_id)
            .first()
        )
        return identity
    return email_identity_find(provider=provider, email=identity_id)


@require_GET
@with_account
def verify_sign_in_token(request: HttpRequest, account: Account, provider_id: str) -> HttpResponse:
    response = _verify(request, account, provider_id)
    # The state cookie is consumed by every attempt, right or wrong (§3.6).
    response.delete_cookie(state_cookie_name(provider_id), samesite="Lax")
    return response


def _verify(request: HttpRequest, account: Account, provider_id: str) -> HttpResponse:
    params = SignInParams.from_request(request)
    identity_id = request.GET.get("identity_id")
    secret = request.GET.get("secret")
    if not identity_id or secret is None:
        messages.error(request, MSG_INVALID_REQUEST)
        return HttpResponseRedirect(params.url(account_url(account, "sign_in")))
    state = _read_state(request, provider_id)
    if state is None:
        return sign_in_failed(request, account, MSG_MISSING, params)
    provider = _email_provider(account, provider_id)
    if provider is None:
        return sign_in_failed(request, account, MSG_METHOD, params)
    email = state["email"]
    back = code_page_url(account, provider.pk, email, params)
    context = request_context(request, "email")
    if not ratelimit.EMAIL_VERIFY_PER_IP.hit(context.remote_ip):
        messages.error(request, MSG_TOO_MANY_ATTEMPTS)
        return HttpResponseRedirect(back)

    code = secret.strip()
    identity = _identity_for(provider, identity_id.strip())
    limited = not ratelimit.EMAIL_VERIFY_PER_IDENTITY.hit(
        provider.pk, identity.pk if identity else identity_id.strip()
    )
    try:
        if identity is None or limited:
            email_token_verify_unknown(secret=code)
        else:
            identity = email_token_verify(
                identity=identity, secret=code + state["fragment"], context=context
            )
    except Unauthorized:
        messages.error(request, MSG_INVALID)
        return HttpResponseRedirect(back)

    ratelimit.EMAIL_REQUESTS_PER_IDENTITY.reset(provider.pk, identity.provider_identifier)
    ratelimit.EMAIL_VERIFY_PER_IDENTITY.reset(provider.pk, identity.pk)
    return signed_in(request, account=account, identity=identity, params=params)
