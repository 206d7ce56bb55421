"""Settings → Identity Providers in a real chromium (portal.md §8 scenarios 61-64).

Scenario 62 connects a new OpenID Connect provider to a real OpenID provider, the npm package
`oidc-provider` (tests/oidc_idp/server.js, as in test_browser_oidc.py). The IdP registers its
client before the provider exists, so the account id is fixed and the provider id the form
pre-generates is replaced by a fixed one before submitting (the form posts it back).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts import oidc
from accounts.models import AuthIdentity, AuthProvider
from accounts.tests.factories import ProviderFactory
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from tests.node import node_with_packages

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IDP_DIR = Path(__file__).resolve().parents[2] / "tests" / "oidc_idp"
ACCOUNT_ID = "7a2d5b63-2e2f-4d7c-8b68-8b1d2a4c1b11"
PROVIDER_ID = "1c0f3a7e-4d66-4a1f-9e9c-6a4c3b8d0e12"
CLIENT_ID = "firezone-connect"
CLIENT_SECRET = "connect-client-secret-for-tests"
BASE = "/acme/settings/identity_providers"


@pytest.fixture(autouse=True)
def _setup(settings: Any, live_server: Any) -> None:
    settings.EXTERNAL_URL = live_server.url
    settings.OIDC_ALLOW_HTTP_LOOPBACK = True
    oidc.clear_caches()


@pytest.fixture(scope="module")
def idp(live_server: Any) -> Iterator[str]:
    """A running oidc-provider that knows the connect callback of PROVIDER_ID; its issuer."""
    node = node_with_packages(IDP_DIR, "oidc-provider")
    base = f"{live_server.url}/{ACCOUNT_ID}"
    config = {
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [
                    f"{base}/sign_in/providers/{PROVIDER_ID}/handle_callback",
                    f"{base}/settings/identity_providers/openid_connect/{PROVIDER_ID}"
                    "/handle_callback",
                ],
            }
        ],
        "accounts": {"ada-3c1": {"email": "admin@acme.test", "name": "Admin"}},
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


def sign_in_as(page: Page, live_server: Any, identity: AuthIdentity) -> None:
    page.goto(f"{live_server.url}/")
    user_agent = page.evaluate("navigator.userAgent")
    name, value = session_cookie_for(identity, user_agent)
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def test_61_default_provider_select(page: Page, live_server: Any) -> None:
    acme = make_acme()
    ProviderFactory(account=acme.account, oidc=True, name="Vault")
    sign_in_as(page, live_server, acme.admin_identity)
    page.goto(f"{live_server.url}{BASE}")
    expect(page).to_have_title("Identity Providers · Firezone")
    button = page.get_by_role("button", name="Make Default")
    expect(button).to_be_disabled()

    page.locator("#default-provider-select").select_option(label="Vault")
    expect(button).to_be_enabled()
    button.click()
    expect(page.get_by_text("Default authentication provider set to Vault")).to_be_visible()
    expect(page.locator("#default-provider-select")).to_have_value(
        str(AuthProvider.objects.get(name="Vault").pk)
    )
    expect(page.locator("#providers").get_by_text("default", exact=True)).to_be_visible()

    page.locator("#default-provider-select").select_option(label="None")
    page.get_by_role("button", name="Make Default").click()
    expect(page.get_by_text("Default authentication provider cleared")).to_be_visible()
    expect(page.locator("#default-provider-select")).to_have_value("none")


def _log_in_at_idp(page: Page, login: str) -> None:
    expect(page.locator("input[name=login]")).to_be_visible()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("whatever")
    page.get_by_role("button", name="Sign-in").click()


def test_62_add_oidc_provider(page: Page, live_server: Any, idp: str) -> None:
    acme = make_acme(id=ACCOUNT_ID)
    sign_in_as(page, live_server, acme.admin_identity)
    page.goto(f"{live_server.url}{BASE}")
    page.get_by_role("link", name="Add Identity Provider").first.click()
    expect(page).to_have_title("New Identity Provider · Firezone")
    page.locator("#idp-option-openid_connect").click()
    expect(
        page.get_by_text("Step 1. Create OAuth application in your identity provider")
    ).to_be_visible()

    page.get_by_label("Name").fill("Vault")
    page.get_by_label("Client ID").fill(CLIENT_ID)
    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    page.get_by_label("Discovery Document URI").fill(f"{idp}/.well-known/openid-configuration")
    # The IdP knows the redirect URI of a fixed provider id only.
    page.locator("input[name=id]").evaluate(f"(el) => {{ el.value = '{PROVIDER_ID}'; }}")
    page.get_by_role("button", name="Connect Identity Provider").click()

    # Sent to the IdP; the provider waits for the consent.
    expect(page.locator("input[name=login]")).to_be_visible()
    assert page.url.startswith(idp)
    provider = AuthProvider.objects.get(pk=PROVIDER_ID)
    assert provider.disabled_at is not None

    page.goto(f"{live_server.url}{BASE}")
    row = page.locator(f"#providers-{PROVIDER_ID}")
    expect(row.get_by_text("Provisioning")).to_be_visible()
    row.get_by_role("link", name="Connect IdP").click()
    _log_in_at_idp(page, "ada-3c1")

    expect(page).to_have_url(f"{live_server.url}{BASE}/openid_connect/{PROVIDER_ID}")
    expect(page.locator("#provider")).to_contain_text("Active")
    expect(page.locator("#provider-title")).not_to_contain_text("(disabled)")
    identity = AuthIdentity.objects.get(provider_id=uuid.UUID(PROVIDER_ID))
    assert identity.actor_id == acme.admin.pk and identity.provider_identifier == "ada-3c1"
    expect(page.locator("#provider")).to_contain_text(CLIENT_ID)


def test_63_sync_upsell(page: Page, live_server: Any) -> None:
    acme = make_acme(features={"idp_sync": False})
    sign_in_as(page, live_server, acme.admin_identity)
    page.goto(f"{live_server.url}{BASE}/new")
    expect(page.locator("#idp-option-mock")).to_have_count(0)
    page.locator("#idp-option-google_workspace").click()
    expect(page).to_have_url(
        f"{live_server.url}{BASE}/openid_connect/new?provider=google_workspace"
    )
    expect(page.get_by_text("Step 3. Enable Directory Sync")).to_be_visible()
    expect(page.get_by_text("UPGRADE TO UNLOCK")).to_be_visible()
    expect(page.get_by_text("Directory sync is not enabled on your current plan.")).to_be_visible()


def test_64_disable_system_provider(page: Page, live_server: Any) -> None:
    # The other active provider: username & password, which the admin signed in with (disabling
    # the email provider signs out the sessions made through it).
    acme: Acme = make_acme(userpass=True)
    assert acme.admin_userpass is not None
    sign_in_as(page, live_server, acme.admin_userpass)
    page.goto(f"{live_server.url}{BASE}")
    page.locator(f"#providers-{acme.email_provider.pk}").get_by_role("link", name="Email").click()
    expect(page).to_have_url(f"{live_server.url}{BASE}/system/{acme.email_provider.pk}")
    expect(page.get_by_role("button", name="Delete Identity Provider")).to_have_count(0)

    page.get_by_role("button", name="Disable").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Confirm disabling the Provider")).to_be_visible()
    dialog.get_by_role("button", name="Disable").click()

    expect(page.locator("#provider-title")).to_contain_text("(disabled)")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    expect(page.get_by_role("button", name="Delete Identity Provider")).to_have_count(0)

    page.context.clear_cookies()
    page.goto(f"{live_server.url}/acme")
    expect(page.get_by_text("Sign in with username and password")).to_be_visible()
    expect(page.get_by_text("Sign in with email")).to_have_count(0)
