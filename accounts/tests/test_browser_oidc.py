"""OpenID Connect sign-in in a real browser against a real OpenID provider (portal.md §8
scenarios 19-22, 27, 28; a nonce mismatch).

The IdP is the npm package `oidc-provider` (tests/oidc_idp/server.js), started once per module
with `node`; `npm ci` installs it on first use (CI installs Node and npm: .ci/run). Its sign-in
form accepts any login: the login typed there becomes the IdP subject (`sub`). The portal runs
in pytest-django's `live_server`; the account and provider ids are fixed so the client can be
registered at the IdP (redirect URI, post-logout URI) before the test data exists.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from playwright.sync_api import Page, expect

from accounts import oidc
from accounts.models import Account, AuthIdentity, AuthProvider
from accounts.services.providers import provider_assign_default
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
    subject_for,
)
from accounts.views.oidc import STATE_COOKIE_MAX_AGE, _state_salt, state_cookie_name
from tests.node import node_with_packages

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IDP_DIR = Path(__file__).resolve().parents[2] / "tests" / "oidc_idp"
ACCOUNT_ID = "6f1c4a52-1d1e-4c6b-9a57-7a0c1f3b0a01"
PROVIDER_ID = "0b9e2f6d-3c55-4f0e-8d8b-5f3b2a7c9d02"
CLIENT_ID = "firezone-portal"
CLIENT_SECRET = "portal-client-secret-for-tests"
USERS = {
    "alice-7f3c": {"email": "alice@acme.test", "name": "Alice"},
    "bob-91ad": {"email": "bob@acme.test", "name": "Bob"},
    "mallory-0e1": {"email": "mallory@evil.test", "name": "Mallory"},
}
MSG_NOT_ALLOWED = "You may not authenticate to this account."


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_packages(IDP_DIR, "oidc-provider")


@pytest.fixture(scope="module")
def idp(node: str, live_server: Any) -> Iterator[str]:
    """A running oidc-provider; yields its issuer URL."""
    config = {
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [
                    f"{live_server.url}/{ACCOUNT_ID}/sign_in/providers/{PROVIDER_ID}/handle_callback"
                ],
                "post_logout_redirect_uris": [f"{live_server.url}/acme"],
            }
        ],
        "accounts": USERS,
    }
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [node, "server.js"],
            cwd=IDP_DIR,
            env={**os.environ, "OIDC_IDP_CONFIG": json.dumps(config)},
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            line = proc.stdout.readline().decode() if ready else ""
            if not line.startswith("READY "):
                log.seek(0)
                pytest.fail(f"the test IdP did not start: {line!r}\n{log.read().decode()}")
            yield line.split()[1]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


class World:
    def __init__(self, url: str, issuer: str) -> None:
        self.url = url
        self.issuer = issuer
        self.account: Account = AccountFactory(id=ACCOUNT_ID, name="Acme", slug="acme")
        self.email_provider = ProviderFactory(account=self.account, name="Email")
        self.provider: AuthProvider = ProviderFactory(
            id=PROVIDER_ID,
            account=self.account,
            oidc=True,
            name="Vault",
            adapter_config={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "discovery_document_uri": f"{issuer}/.well-known/openid-configuration",
                "scope": "openid email profile",
                "response_type": "code",
            },
        )

    def admin(self, identifier: str, **kwargs: Any) -> AuthIdentity:
        actor = ActorFactory(account=self.account, admin=True, name=kwargs.pop("name", "Admin"))
        return IdentityFactory(
            actor=actor,
            account=self.account,
            provider=self.provider,
            provider_identifier=identifier,
            email=None,
            **kwargs,
        )


@pytest.fixture
def world(live_server: Any, idp: str, settings: Any) -> World:
    settings.EXTERNAL_URL = live_server.url
    oidc.clear_caches()
    return World(live_server.url, idp)


def log_in_at_idp(page: Page, login: str) -> None:
    """The IdP's own sign-in form (oidc-provider dev interactions: any password)."""
    expect(page.locator("input[name=login]")).to_be_visible()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("whatever")
    page.get_by_role("button", name="Sign-in").click()


def click_sign_in_with_vault(page: Page, world: World) -> None:
    page.goto(f"{world.url}/acme")
    page.get_by_role("link", name="Sign in with Vault").click()
    expect(page.locator("input[name=login]")).to_be_visible()
    assert page.url.startswith(world.issuer)


def sign_in(page: Page, world: World, login: str) -> None:
    click_sign_in_with_vault(page, world)
    log_in_at_idp(page, login)


def test_sign_in_by_sub(page: Page, world: World) -> None:
    """Scenario 19: an identity pre-provisioned with the IdP subject."""
    identity = world.admin("alice-7f3c", name="Alice")

    sign_in(page, world, "alice-7f3c")

    expect(page).to_have_url(f"{world.url}/acme/sites")
    expect(page.locator("#user-menu-button")).to_be_visible()
    identity.refresh_from_db()
    assert identity.email == "alice@acme.test"  # from userinfo
    assert identity.provider_state["id_token"]
    assert identity.provider_state["claims"]["sub"] == "alice-7f3c"


def test_invited_by_email(page: Page, world: World) -> None:
    """Scenario 20: an identity created with the user's email, never used, takes the `sub`."""
    identity = world.admin("bob@acme.test", name="Bob")

    sign_in(page, world, "bob-91ad")

    expect(page).to_have_url(f"{world.url}/acme/sites")
    identity.refresh_from_db()
    assert identity.provider_identifier == "bob-91ad"
    assert identity.email == "bob@acme.test"


def test_unknown_user_no_jit(page: Page, world: World) -> None:
    """Scenario 21: no identity matches; nothing is created."""
    world.admin("alice-7f3c")
    before = AuthIdentity.objects.count()

    sign_in(page, world, "mallory-0e1")

    expect(page).to_have_url(f"{world.url}/{ACCOUNT_ID}")
    expect(page.get_by_text(MSG_NOT_ALLOWED)).to_be_visible()
    assert AuthIdentity.objects.count() == before


def test_state_tampering(page: Page, world: World) -> None:
    """Scenario 22: a callback without a prior redirect."""
    page.goto(f"{world.url}/acme/sign_in/providers/{PROVIDER_ID}/handle_callback?state=x&code=y")
    expect(page).to_have_url(f"{world.url}/acme")
    expect(page.get_by_text("Your session has expired, please try again.")).to_be_visible()


def test_nonce_mismatch_is_refused(page: Page, world: World) -> None:
    """The ID token must carry the nonce of *this* sign-in: swap the nonce kept in the (signed)
    state cookie while the user is at the IdP; the genuine ID token is then refused."""
    world.admin("alice-7f3c")
    click_sign_in_with_vault(page, world)
    name = state_cookie_name(PROVIDER_ID)
    (cookie,) = [c for c in page.context.cookies(world.url) if c["name"] == name]
    state = signing.loads(
        cookie["value"], salt=_state_salt(PROVIDER_ID), max_age=STATE_COOKIE_MAX_AGE
    )
    state["nonce"] = "a-nonce-the-idp-never-saw"
    page.context.add_cookies(
        [
            {
                **cookie,
                "value": signing.dumps(state, salt=_state_salt(PROVIDER_ID), compress=True),
            }
        ]
    )

    log_in_at_idp(page, "alice-7f3c")

    expect(page.get_by_text(MSG_NOT_ALLOWED)).to_be_visible()
    expect(page).to_have_url(f"{world.url}/{ACCOUNT_ID}")
    page.goto(f"{world.url}/acme/sites")
    expect(page).not_to_have_url(f"{world.url}/acme/sites")


def test_default_provider_auto_redirect_for_clients(page: Page, world: World) -> None:
    """Scenario 27: with a default provider, `as=client` goes straight to the IdP through the
    provider's redirect (params kept); the browser sign-in page is unaffected."""
    admin = world.admin("alice-7f3c")
    provider_assign_default(subject=subject_for(admin.actor), provider=world.provider)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{world.url}/acme?as=client&nonce=N&state=S")

    expect(page.locator("input[name=login]")).to_be_visible()
    assert page.url.startswith(world.issuer)
    hops = [u for u in requested if f"/sign_in/providers/{PROVIDER_ID}/redirect" in u]
    assert hops, requested
    assert parse_qs(urlsplit(hops[0]).query) == {"as": ["client"], "nonce": ["N"], "state": ["S"]}

    page.goto(f"{world.url}/acme")
    expect(page).to_have_url(f"{world.url}/acme")
    expect(page.get_by_role("link", name="Sign in with Vault")).to_be_visible()


def test_sign_out_goes_through_the_idp_end_session(page: Page, world: World) -> None:
    """Scenario 28 (OIDC): sign-out revokes the session, visits the IdP's end-session endpoint
    with `id_token_hint`, `client_id` and `post_logout_redirect_uri={portal}/acme`, and the
    IdP sends the browser back to the sign-in page."""
    identity = world.admin("alice-7f3c")
    sign_in(page, world, "alice-7f3c")
    expect(page).to_have_url(f"{world.url}/acme/sites")
    identity.refresh_from_db()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.locator("#user-menu-button").click()
    page.get_by_role("menuitem", name="Sign out").click()

    button = page.get_by_role("button", name="Yes, sign me out")
    expect(button).to_be_visible()
    (end_session,) = [u for u in requested if u.startswith(f"{world.issuer}/session/end")]
    assert parse_qs(urlsplit(end_session).query) == {
        "id_token_hint": [identity.provider_state["id_token"]],
        "client_id": [CLIENT_ID],
        "post_logout_redirect_uri": [f"{world.url}/acme"],
    }
    button.click()

    expect(page).to_have_url(f"{world.url}/acme")
    expect(page.get_by_role("link", name="Sign in with Vault")).to_be_visible()
    page.goto(f"{world.url}/acme/sites")
    expect(page.get_by_text("You must sign in to access this page.")).to_be_visible()
