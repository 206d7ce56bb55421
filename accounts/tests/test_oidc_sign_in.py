"""OpenID Connect sign-in (portal.md §3.8, §3.12) against a fake IdP served over real HTTP: the
redirect to the IdP (discovery, authorization request, state cookie, PKCE, nonce) and successful
callbacks (code exchange, ID token, userinfo, identity matching).

Shared fixtures: accounts/tests/_oidc.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from accounts import oidc
from accounts.models import Account, AuthProvider, Token
from accounts.tests._oidc import (  # noqa: F401
    MSG_METHOD,
    MSG_NOT_ALLOWED,
    account_fixture,
    admin_identity,
    flashes,
    idp_fixture,
    provider_fixture,
    sign_in,
    start,
    stored_sessions,
)
from accounts.tests.factories import (
    ProviderFactory,
)
from accounts.tests.fake_idp import FakeIdP
from accounts.views.oidc import STATE_COOKIE_MAX_AGE, state_cookie_name

pytestmark = pytest.mark.django_db

# --- redirect to the IdP -------------------------------------------------------------------------


def test_redirect_sends_the_browser_to_the_idp_with_state_pkce_and_nonce(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    response = start(client, provider, "?as=client&nonce=N1&state=S1&redirect_to=")

    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{idp.issuer}/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["client_id"] == idp.client_id
    assert query["response_type"] == "code"
    assert query["scope"] == "openid email profile"
    assert query["redirect_uri"] == (
        f"http://localhost:8000/{account.pk}/sign_in/providers/{provider.pk}/handle_callback"
    )
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline"
    # 32 random bytes, base64url without padding.
    assert len(query["state"]) == 43
    assert len(query["nonce"]) == 43
    assert len(query["code_challenge"]) == 43
    # The client's nonce/state never reach the IdP.
    assert "N1" not in response["Location"] and "S1" not in response["Location"]

    cookie = response.cookies[state_cookie_name(provider.pk)]
    assert cookie["max-age"] == STATE_COOKIE_MAX_AGE == 1800
    assert cookie["samesite"] == "Lax"
    assert cookie["httponly"]
    assert query["state"] not in cookie.value  # signed and compressed, not plain


def test_redirect_refuses_unknown_disabled_or_non_oidc_providers(
    client: Client, account: Account, provider: AuthProvider
) -> None:
    email = ProviderFactory(account=account)
    disabled = ProviderFactory(
        account=account, oidc=True, disabled_at=timezone.now(), adapter_config={}
    )
    for provider_id in ("nope", "00000000-0000-0000-0000-000000000000", email.pk, disabled.pk):
        response = client.get(f"/acme/sign_in/providers/{provider_id}/redirect?as=client")
        assert response.status_code == 302
        assert response["Location"] == "/acme?as=client"
        assert flashes(response) == [MSG_METHOD]


def test_unknown_account_is_404(client: Client, provider: AuthProvider) -> None:
    response = client.get(f"/nobody_here/sign_in/providers/{provider.pk}/redirect")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda idp: setattr(idp, "discovery_status", 500),
            oidc.MSG_HTTP_STATUS.format(status=500),
        ),
        (
            lambda idp: setattr(idp, "discovery_status", 404),
            oidc.MSG_HTTP_STATUS.format(status=404),
        ),
        (lambda idp: setattr(idp, "discovery_body", b"<html>nope</html>"), oidc.MSG_UNAVAILABLE),
        (
            lambda idp: idp.discovery_overrides.update(token_endpoint=None),
            oidc.MSG_UNAVAILABLE,
        ),
    ],
    ids=["500", "404", "not-json", "incomplete"],
)
def test_discovery_errors_are_reported_with_the_spec_texts(
    client: Client, provider: AuthProvider, idp: FakeIdP, setup: Any, message: str
) -> None:
    setup(idp)
    response = start(client, provider, "?as=client&state=S&nonce=N")
    assert response.status_code == 302
    assert response["Location"] == "/acme?as=client&state=S&nonce=N"
    assert flashes(response) == [message]
    assert state_cookie_name(provider.pk) not in response.cookies


def test_discovery_timeout(
    client: Client, provider: AuthProvider, idp: FakeIdP, settings: Any
) -> None:
    settings.OIDC_HTTP_TIMEOUT = 0.3
    idp.delay = 1.5
    response = start(client, provider)
    assert flashes(response) == ["Your identity provider took too long to respond."]


def test_unreachable_idp(client: Client, account: Account) -> None:
    provider = ProviderFactory(
        account=account,
        oidc=True,
        adapter_config={
            "client_id": "c",
            "client_secret": "s",
            # Nothing listens on the discard port.
            "discovery_document_uri": "http://127.0.0.1:9/.well-known/openid-configuration",
        },
    )
    response = start(client, provider)
    assert flashes(response) == ["Your identity provider is not available right now."]


def test_discovery_document_is_cached(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    assert start(client, provider).status_code == 302
    idp.discovery_status = 500  # a cached document keeps sign-in working
    response = start(client, provider)
    assert urlsplit(response["Location"]).netloc == urlsplit(idp.issuer).netloc


# --- callback: success ---------------------------------------------------------------------------


def test_sign_in_by_sub_stores_claims_and_id_token(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-123")

    response = sign_in(client, provider, idp, sub="sub-123", email="ada@acme.test", name="Ada")

    assert response.status_code == 302
    assert response["Location"] == "/acme/sites"
    assert [(t, a) for t, a, _ in stored_sessions(client)] == [("browser", str(account.pk))]
    identity.refresh_from_db()
    state = identity.provider_state
    assert state["claims"]["sub"] == "sub-123"
    assert state["claims"]["email"] == "ada@acme.test"
    assert state["userinfo"] == {"sub": "sub-123", "email": "ada@acme.test", "name": "Ada"}
    # §9 item 12: the raw ID token is kept for `id_token_hint` at sign-out.
    assert state["id_token"].count(".") == 2
    assert state["access_token"] and state["refresh_token"]
    assert state["expires_at"]
    assert identity.email == "ada@acme.test"
    # PKCE: the verifier went to the token endpoint (the fake IdP checked it).
    assert idp.token_requests[-1]["code_verifier"]
    # The browser token lives no longer than the IdP session (1 h here).
    token = Token.objects.get(identity=identity, type=Token.Type.BROWSER)
    assert token.expires_at is not None
    assert token.expires_at <= timezone.now() + timedelta(hours=1, minutes=1)
    # The state cookie is consumed.
    assert response.cookies[state_cookie_name(provider.pk)]["max-age"] == 0


def test_email_from_userinfo_when_the_id_token_has_none(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-9")
    idp.userinfo = {"sub": "sub-9", "email": "nine@acme.test"}
    response = sign_in(client, provider, idp, sub="sub-9")
    assert response["Location"] == "/acme/sites"
    identity.refresh_from_db()
    assert identity.email == "nine@acme.test"


def test_invited_by_email_takes_the_sub(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "bob@acme.test", email="bob@acme.test")

    response = sign_in(client, provider, idp, sub="bob-sub-1", email="bob@acme.test")

    assert response["Location"] == "/acme/sites"
    identity.refresh_from_db()
    assert identity.provider_identifier == "bob-sub-1"
    assert identity.email == "bob@acme.test"


def test_email_match_only_for_never_used_identities(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "bob@acme.test", last_seen_at=timezone.now())
    response = sign_in(client, provider, idp, sub="bob-sub-1", email="bob@acme.test")
    assert flashes(response) == [MSG_NOT_ALLOWED]


def test_email_match_refused_when_the_idp_says_unverified(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "bob@acme.test")
    response = sign_in(
        client, provider, idp, sub="bob-sub-1", email="bob@acme.test", email_verified=False
    )
    assert flashes(response) == [MSG_NOT_ALLOWED]


def test_exact_sub_match_wins_over_email_invitation(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    by_sub = admin_identity(provider, "sub-1")
    by_email = admin_identity(provider, "one@acme.test")
    sign_in(client, provider, idp, sub="sub-1", email="one@acme.test")
    by_sub.refresh_from_db()
    by_email.refresh_from_db()
    assert by_sub.provider_state["claims"]["sub"] == "sub-1"
    assert by_email.provider_identifier == "one@acme.test"
    assert by_email.provider_state == {}


def test_client_sign_in_keeps_the_params_through_the_idp(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-c")
    identity.actor.type = "account_user"
    identity.actor.save()

    response = sign_in(client, provider, idp, sub="sub-c", query="?as=client&nonce=N0&state=S0")

    assert response.status_code == 200
    assert b"Sign in successful." in response.content
    assert "fz_client_auth" in response.cookies
    assert stored_sessions(client) == []  # client tokens never go into the browser session
    token = Token.objects.get(identity=identity)
    assert token.type == Token.Type.CLIENT


def test_non_admin_browser_sign_in_is_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-u")
    identity.actor.type = "account_user"
    identity.actor.save()
    response = sign_in(client, provider, idp, sub="sub-u")
    assert flashes(response) == [
        "You must have the admin role in Firezone to sign in to the admin portal."
    ]
    assert stored_sessions(client) == []
