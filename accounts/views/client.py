"""Device client hand-off (portal.md §3.10 steps 5, and route 15).

`client_redirect` reads the `fz_client_auth` cookie set by `accounts.sign_in.flow.signed_in` and
302s to the client's URL scheme: `<CLIENT_HANDLER>handle_client_sign_in_callback?actor_name=…
&fragment=…&identity_provider_identifier=…&state=…&account_slug=…&account_name=…` (exactly these
keys, byte-compatible with the Firezone clients; the nonce is never sent back). The cookie is
single use. Without a valid cookie → `/<account>/sign_in/client_auth_error`.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import Account
from accounts.sign_in.flow import CLIENT_AUTH_COOKIE, client_auth_read
from firezone.web.pages import account_url
from firezone.web.session import with_account

DEFAULT_CLIENT_HANDLER = "firezone-fd0020211111://"


class AppRedirect(HttpResponseRedirect):
    """A redirect to a native app's custom URL scheme (Django only allows http/https/ftp)."""

    def __init__(self, url: str) -> None:
        scheme = urlsplit(url).scheme
        self.allowed_schemes = ["http", "https", *([scheme] if scheme else [])]
        super().__init__(url)


def client_handler() -> str:
    """`scheme://` or `scheme://host[:port]/`, always ending so a path can follow."""
    handler = getattr(settings, "CLIENT_HANDLER", "") or DEFAULT_CLIENT_HANDLER
    return handler if handler.endswith("/") else handler + "/"


@require_GET
@with_account
def client_redirect(request: HttpRequest, account: Account) -> HttpResponse:
    data = client_auth_read(request)
    if data is None:
        return HttpResponseRedirect(account_url(account, "client_auth_error"))
    query = urlencode(
        {
            "actor_name": data["actor_name"],
            "fragment": data["fragment"],
            "identity_provider_identifier": data["identity_provider_identifier"],
            "state": data["state"],
            "account_slug": account.slug,
            "account_name": account.name,
        }
    )
    response = AppRedirect(f"{client_handler()}handle_client_sign_in_callback?{query}")
    response.delete_cookie(CLIENT_AUTH_COOKIE, samesite="Strict")
    return response


@require_GET
@with_account
def client_auth_error(request: HttpRequest, account: Account) -> HttpResponse:
    return render(
        request,
        "accounts/client_auth_error.html",
        {"account": account, "page_title": "Sign in error"},
    )
