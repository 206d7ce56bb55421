"""`GET /<account>/sign_out` (portal.md §3.12, §3.10 step 6).

Revokes the browser session of this account (deleting its token disconnects its live pages),
gives the browser a new session id while keeping the other accounts' sessions and the preferred
locale, then goes to the IdP's end-session URL (OIDC-family providers, `accounts.sign_in.logout`) or
straight back to the sign-in page. With `as=client&state=S` the final stop is the client's
`firezone://handle_client_sign_out_callback?state=S`. Works when already signed out.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_GET

from accounts.models import Account
from accounts.services.tokens_admin import token_delete_for_subject
from accounts.sign_in.logout import logout_url
from accounts.sign_in.params import SignInParams
from accounts.views.client import AppRedirect
from firezone.errors import DomainError
from firezone.web.pages import account_url
from firezone.web.session import (
    SESSIONS_KEY,
    fetch_subject,
    session_entries,
    with_account,
)

CLIENT_SIGN_OUT_CALLBACK = "firezone://handle_client_sign_out_callback"
KEPT_SESSION_KEYS = ("preferred_locale",)


@require_GET
@with_account
def sign_out(request: HttpRequest, account: Account) -> HttpResponse:
    params = SignInParams.from_request(request)
    subject = fetch_subject(request, account, type="browser")
    idp_url = None
    if subject is not None:
        with contextlib.suppress(DomainError):  # already gone: nothing left to revoke
            token_delete_for_subject(subject=subject)
        identity = subject.identity
        if identity is not None and not params.is_client:
            idp_url = logout_url(identity.provider, identity, account)

    # Fixation protection: a new session id; only other accounts' sessions survive.
    account_id = str(account.pk)
    kept = {k: request.session[k] for k in KEPT_SESSION_KEYS if k in request.session}
    others = [list(e) for e in session_entries(request) if e[1] != account_id]
    request.session.flush()
    if others:
        request.session[SESSIONS_KEY] = others
    request.session.update(kept)

    if params.is_client:
        query = urlencode({"state": params.state or ""})
        return AppRedirect(f"{CLIENT_SIGN_OUT_CALLBACK}?{query}")
    return HttpResponseRedirect(idp_url or account_url(account, "sign_in"))
