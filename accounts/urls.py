"""Portal routes at the root (portal.md §2.1): `/`, `/sign_up`, `/try`, the dev pages, then
everything under `/<account>/...` (account id or slug). Fixed first segments come before the
`<account>` patterns; `account_from_path` also refuses the reserved ones (RESERVED_PATHS)."""

from __future__ import annotations

from django.conf import settings
from django.urls import include, path

from accounts.views import client, dev, email, home, pages, sign_in, sign_out, userpass

A = "<str:account>"
P = f"{A}/sign_in/providers/<str:provider_id>"

urlpatterns = [
    path("", home.home, name="home"),
    path("browser/config.xml", pages.browserconfig, name="browserconfig"),
    path("", include("accounts.sign_up_urls")),
]

# Dev/test only (§1.5): the local mailbox and error test pages.
if settings.DEBUG or getattr(settings, "TESTING", False):
    urlpatterns += [
        path("dev/mailbox", dev.mailbox_view, name="dev_mailbox"),
        path("dev/mailbox/json", dev.mailbox_json, name="dev_mailbox_json"),
        path("error/<str:code>", dev.error, name="dev_error"),
    ]

urlpatterns += [
    path("", include("accounts.oidc_urls")),
    path(A, sign_in.sign_in, name="sign_in"),
    path(f"{A}/sign_in/providers/email/<str:provider_id>", email.code_page, name="email_code"),
    path(f"{P}/request_email_otp", email.request_email_otp, name="request_email_otp"),
    path(f"{P}/verify_sign_in_token", email.verify_sign_in_token, name="verify_sign_in_token"),
    path(f"{P}/verify_credentials", userpass.verify_credentials, name="verify_credentials"),
    path(f"{A}/sign_in/client_redirect", client.client_redirect, name="client_redirect"),
    path(f"{A}/sign_in/client_auth_error", client.client_auth_error, name="client_auth_error"),
    path(f"{A}/sign_out", sign_out.sign_out, name="sign_out"),
]
