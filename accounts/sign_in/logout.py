"""The identity provider's end-session URL at portal sign-out (portal.md §3.12).

`logout_url(provider, identity, account)` returns where to send the browser after its session was
revoked, or None to go straight back to the account's sign-in page (email and userpass
providers, IdPs without an end-session endpoint). OIDC-family adapters use the IdP's
`end_session_endpoint` (accounts.oidc); an adapter may register its own builder in
`LOGOUT_URL_BUILDERS`. A builder that fails is ignored, so sign-out never breaks on an
unreachable IdP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings

from accounts import oidc
from accounts.models import Account, AuthIdentity, AuthProvider
from firezone.web.pages import account_url

logger = logging.getLogger(__name__)

LogoutUrlBuilder = Callable[[AuthProvider, AuthIdentity, Account], "str | None"]

# adapter name -> builder
LOGOUT_URL_BUILDERS: dict[str, LogoutUrlBuilder] = {}


def register(adapter: str, builder: LogoutUrlBuilder) -> None:
    LOGOUT_URL_BUILDERS[adapter] = builder


def _oidc_logout_url(
    provider: AuthProvider, identity: AuthIdentity | None, account: Account
) -> str | None:
    """OIDC-family adapters: the IdP's end-session endpoint with the identity's last ID token
    as `id_token_hint` (kept since §9 item 12), `client_id`, and `post_logout_redirect_uri` =
    `{portal}/<account>`."""
    if not oidc.is_oidc(provider):
        return None
    id_token = (identity.provider_state or {}).get("id_token") if identity else None
    portal = str(settings.EXTERNAL_URL).rstrip("/")
    return oidc.end_session_url(
        provider,
        id_token=id_token if isinstance(id_token, str) else None,
        post_logout_redirect_uri=portal + account_url(account, "sign_in"),
    )


def logout_url(provider: AuthProvider, identity: AuthIdentity, account: Account) -> str | None:
    builder = LOGOUT_URL_BUILDERS.get(provider.adapter, _oidc_logout_url)
    try:
        return builder(provider, identity, account)
    except Exception:  # an IdP problem must not keep the user signed in
        logger.exception("logout URL for provider %s failed", provider.pk)
        return None
