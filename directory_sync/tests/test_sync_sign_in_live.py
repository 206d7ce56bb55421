"""End to end (issue 16): a synced user signs in with OIDC and reaches the resources their
synced group's policy grants, on a real client socket.

* The directory: an Okta provider reads the fake Okta on a local port
  (directory_sync/tests/fakes.py) holding Ada (in "Engineering") and John (in "DevOps"); the
  run is queued as "Sync now" queues it (`enqueue_sync_now`, eager Celery under tests).
* The grants: an admin's policies on the synced groups — Engineering → gitlab.acme.internal,
  DevOps → vault.acme.internal — each resource connected to a site whose gateway is connected.
* The sign-in: the same Okta provider signs users in through a real OpenID provider (the npm
  `oidc-provider`, tests/oidc_idp/server.js, as in accounts/tests/test_browser_oidc.py; its
  `sub` is the login typed at its form, here Ada's Okta user id). A headless chromium
  (Playwright) goes through the client sign-in (`/acme?as=client&nonce=…&state=…`) on
  pytest-django's `live_server` (in this process: the `settings` below reach it) and lands on
  the client's deep link (`CLIENT_HANDLER`, played by an address the browser can open), whose
  `fragment` with the nonce is the client token.
* The socket: a client connects with that token to a real daphne (tests/live.py, on the same
  committed test database) and its `init` lists Ada's resource, not John's.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from accounts import oidc
from accounts.models import ActorGroup, AuthIdentity, AuthProvider, Token
from accounts.services.tokens import token_create
from accounts.tests.factories import ProviderFactory
from accounts.tests.portal import make_acme
from directory_sync.tasks import enqueue_sync_now
from directory_sync.tests.fakes import OktaFake, okta_fixture  # noqa: F401
from directory_sync.tests.test_browser_sync import access_token
from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory, SiteFactory
from tests import live as harness
from tests.live import LiveServer
from tests.node import node_with_packages
from tests.portal_browser import client_socket, gateway_socket

pytestmark = [pytest.mark.browser, pytest.mark.slow]

live_daphne = harness.live_daphne

IDP_DIR = Path(__file__).resolve().parents[2] / "tests" / "oidc_idp"
ACCOUNT_ID = "5d0c7e21-8a44-4c3f-9b1e-2f6a7c8d9e01"
PROVIDER_ID = "3e8b1c55-7f2a-4d9e-a6b0-1c2d3e4f5a02"
CLIENT_ID = "firezone-okta"
CLIENT_SECRET = "okta-client-secret-for-tests"
ADA = "00u1adasyncedokta5d7"  # Ada's Okta user id = her `sub` at the IdP
JOHN = "00u2johnsyncedokt5d7"
ENGINEERING, DEVOPS = "00g1engineering0x5d7", "00g2devops00000000d7"
OKTA_SCOPE = "openid email profile offline_access okta.groups.read okta.users.read"


def okta_user(id: str, first: str, last: str, email: str) -> dict[str, Any]:
    return {
        "id": id,
        "status": "ACTIVE",
        "type": {"id": "otye1rmouoEfu7KCV5d7"},
        "profile": {"firstName": first, "lastName": last, "login": email, "email": email},
    }


def okta_group(id: str, name: str) -> dict[str, Any]:
    return {"id": id, "type": "OKTA_GROUP", "profile": {"name": name, "description": ""}}


@pytest.fixture(scope="module")
def idp(live_server: Any) -> Iterator[str]:
    """The real OpenID provider, knowing the sign-in callback of PROVIDER_ID; its issuer."""
    node = node_with_packages(IDP_DIR, "oidc-provider")
    callback = f"{live_server.url}/{ACCOUNT_ID}/sign_in/providers/{PROVIDER_ID}/handle_callback"
    config = {
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [callback],
            }
        ],
        "accounts": {ADA: {"email": "ada@acme.test", "name": "Ada Lovelace"}},
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


@pytest.fixture
def server(live_daphne: LiveServer) -> Iterator[LiveServer]:
    """The daphne for the device sockets. Its log of this test is printed at teardown (pytest
    shows captured output of failed tests only)."""
    start = live_daphne.log_path.stat().st_size
    yield live_daphne
    with live_daphne.log_path.open("rb") as log:
        log.seek(start)
        print("---- daphne log of this test ----")
        print(log.read().decode(errors="replace"))


def test_synced_user_signs_in_and_reaches_the_group_resources(
    live_server: Any, idp: str, server: LiveServer, page: Page, okta: OktaFake, settings: Any
) -> None:
    settings.EXTERNAL_URL = live_server.url
    settings.OIDC_ALLOW_HTTP_LOOPBACK = True
    settings.CLIENT_HANDLER = f"{live_server.url}/mock-client/"
    oidc.clear_caches()

    # An account with an Okta provider, connected (admin OAuth tokens), signing in at the IdP.
    acme = make_acme(id=ACCOUNT_ID)
    okta_provider = ProviderFactory(
        id=PROVIDER_ID,
        account=acme.account,
        adapter=AuthProvider.Adapter.OKTA,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        name="Okta",
        adapter_config={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "discovery_document_uri": f"{idp}/.well-known/openid-configuration",
            "scope": OKTA_SCOPE,
            "response_type": "code",
            "okta_account_domain": "acme.okta.com",
            "api_base_url": okta.url,
        },
        adapter_state={
            "access_token": access_token(),
            "refresh_token": "okta-refresh-token",
            "expires_at": int(time.time() + 3600),
        },
    )

    # The directory: Ada in Engineering, John in DevOps.
    ada = okta_user(ADA, "Ada", "Lovelace", "ada@acme.test")
    john = okta_user(JOHN, "John", "Doe", "john@acme.test")
    okta.users = [[ada, john]]
    okta.groups = [[okta_group(ENGINEERING, "Engineering"), okta_group(DEVOPS, "DevOps")]]
    okta.members = {ENGINEERING: [[ada]], DEVOPS: [[john]]}
    okta.default_members = [[]]
    enqueue_sync_now(str(okta_provider.pk))
    okta_provider.refresh_from_db()
    assert okta_provider.last_synced_at is not None, okta_provider.last_sync_error
    identity = AuthIdentity.objects.get(provider=okta_provider, provider_identifier=ADA)
    assert identity.actor.name == "Ada Lovelace" and identity.actor.type == "account_user"
    engineering = ActorGroup.objects.get(
        provider=okta_provider, provider_identifier=f"G:{ENGINEERING}"
    )
    devops = ActorGroup.objects.get(provider=okta_provider, provider_identifier=f"G:{DEVOPS}")

    # The admin's grants on the synced groups, each resource in a site with a gateway.
    site = SiteFactory(account=acme.account, name="HQ")
    gitlab = ResourceFactory(account=acme.account, address="gitlab.acme.internal", name="GitLab")
    vault = ResourceFactory(account=acme.account, address="vault.acme.internal", name="Vault")
    for resource, group in ((gitlab, engineering), (vault, devops)):
        ConnectionFactory(resource=resource, gateway_group=site, account=acme.account)
        PolicyFactory(account=acme.account, actor_group=group, resource=resource)
    site_token = token_create(type="gateway_group", account=acme.account, gateway_group=site)

    # Ada signs in from her client: the portal sends her to the IdP, she logs in there as
    # her `sub`, and the portal hands the client token to the app's deep link.
    page.goto(f"{live_server.url}/acme?as=client&nonce=N0nce&state=S7ate")
    page.get_by_role("link", name="Sign in with Okta").click()
    expect(page.locator("input[name=login]")).to_be_visible()
    assert page.url.startswith(idp)
    page.locator("input[name=login]").fill(ADA)
    page.locator("input[name=password]").fill("whatever")
    page.get_by_role("button", name="Sign-in").click()
    expect(page).to_have_url(re.compile(r"/mock-client/handle_client_sign_in_callback\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["actor_name"] == ["Ada Lovelace"]
    assert query["identity_provider_identifier"] == [ADA]
    assert query["state"] == ["S7ate"] and query["account_slug"] == ["acme"]
    client_token = "N0nce" + query["fragment"][0]
    (issued,) = Token.objects.filter(account=acme.account, type="client")
    assert issued.identity_id == identity.pk and issued.actor_id == identity.actor_id

    # Her client, on a real socket, receives Engineering's resource and not DevOps'.
    gateway = gateway_socket(server, site_token.encoded, name="hq-gw")
    try:
        with client_socket(server, client_token, name="ada-laptop") as client:
            init = client.init
        resources = {r.get("address"): r for r in init["payload"]["resources"]}
        assert "gitlab.acme.internal" in resources, init
        assert "vault.acme.internal" not in resources
        assert resources["gitlab.acme.internal"]["name"] == "GitLab"
    finally:
        gateway.close()
