"""Directory sync from the provider page in a real chromium (billing_sync_jobs.md §2.2 "Sync
now", §2.7 "UI status"; issue 16).

An Okta provider left as the connect flow leaves it (client credentials, the Okta domain and
API base URL in `adapter_config`; the admin's OAuth access and refresh tokens in
`adapter_state`) reads its directory from the fake Okta on a local port
(directory_sync/tests/fakes.py: two active users, one suspended, three groups). The portal runs
in pytest-django's `live_server`, in this process: Celery is eager under tests, so the run that
"Sync now" queues happens during the POST and the page it redirects to shows the result.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import AuthProvider
from accounts.tests.factories import ProviderFactory
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from directory_sync.tests.fakes import OktaFake, okta_fixture  # noqa: F401
from directory_sync.views import MSG_SYNC_QUEUED

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ERROR_BOX = "IdP provider reported an error during the last sync:"
OKTA_401 = {
    "errorCode": "E0000011",
    "errorSummary": "Invalid token provided",
    "errorLink": "E0000011",
    "errorId": "oaeQ1Yq1Ot3T0K9QmA4g9tWcA",
    "errorCauses": [],
}


def access_token(lifetime: float = 3600) -> str:
    """An Okta-like JWT access token (the adapter reads its `exp`, nothing verifies it)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": "admin@acme.test", "exp": int(time.time() + lifetime)}
    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.c2lnbmF0dXJl"


def connected_okta(acme: Acme, okta: OktaFake) -> AuthProvider:
    """An Okta provider as the connect flow leaves it."""
    return ProviderFactory(
        account=acme.account,
        adapter=AuthProvider.Adapter.OKTA,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        name="Okta",
        adapter_config={
            "client_id": "okta-client",
            "client_secret": "okta-secret",
            "okta_account_domain": "example.okta.com",
            "api_base_url": okta.url,
        },
        adapter_state={
            "access_token": access_token(),
            "refresh_token": "okta-refresh-token",
            "expires_at": int(time.time() + 3600),
            "claims": {"sub": "admin@acme.test", "email": "admin@acme.test"},
        },
    )


def test_sync_now_shows_the_directory_then_the_idp_error(
    live_server: Any, page: Page, okta: OktaFake, settings: Any
) -> None:
    settings.EXTERNAL_URL = live_server.url
    acme = make_acme()
    provider = connected_okta(acme, okta)
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])
    provider_url = f"{live_server.url}/acme/settings/identity_providers/okta/{provider.pk}"

    page.goto(provider_url)
    status = page.locator(".sync-status")
    expect(status).to_have_text("Never synced")
    expect(page.locator("#sync-error")).to_have_count(0)

    # Sync now: the run happens during the POST (eager Celery); the page shows its result.
    page.locator("#sync-now").get_by_role("button", name="Sync now").click()
    expect(page).to_have_url(provider_url)
    expect(page.get_by_text(MSG_SYNC_QUEUED)).to_be_visible()
    expect(status).to_contain_text(re.compile(r"Synced 2 identities and 3 groups "))
    expect(page.locator("#sync-error")).to_have_count(0)
    assert [r.path for r in okta.requests][:2] == ["/api/v1/users", "/api/v1/users"]
    assert all(
        r.headers["Authorization"] == f"Bearer {provider.adapter_state['access_token']}"
        for r in okta.requests
    )

    # The synced identities: the two active users (the suspended one is skipped).
    status.get_by_role("link", name="2 identities").click()
    expect(page).to_have_url(re.compile(r"/acme/actors\?"))
    actors = page.locator("main")
    expect(actors.get_by_text("John Doe")).to_be_visible()
    expect(actors.get_by_text("Jane Smith")).to_be_visible()
    expect(actors.get_by_text("Admin", exact=True)).to_have_count(0)  # not from this provider

    # The synced groups.
    page.go_back()
    page.locator(".sync-status").get_by_role("link", name="3 groups").click()
    expect(page).to_have_url(re.compile(r"/acme/groups\?"))
    groups = page.locator("main")
    for group in ("Group:DevOps", "Group:Engineering", "Group:Everyone"):
        expect(groups.get_by_text(group, exact=True)).to_be_visible()

    # Okta now refuses the token: the next run fails and the page says why.
    okta.fail("/api/v1/users", 401, OKTA_401, headers={"WWW-Authenticate": 'Bearer error="x"'})
    page.goto(provider_url)
    page.locator("#sync-now").get_by_role("button", name="Sync now").click()
    expect(page.get_by_text(MSG_SYNC_QUEUED)).to_be_visible()
    error = page.locator("#sync-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(ERROR_BOX)
    expect(error).to_contain_text("E0000011 => Invalid token provided")
    expect(page.locator(".sync-status")).to_have_count(0)  # no "Synced …", no "Never synced"
    provider.refresh_from_db()
    assert provider.last_syncs_failed == 1 and provider.sync_disabled_at is None

    # Okta answers again (it never pauses the sync): the next Sync now recovers.
    okta.failures.clear()
    page.locator("#sync-now").get_by_role("button", name="Sync now").click()
    expect(page.locator(".sync-status")).to_contain_text("Synced 2 identities and 3 groups")
    expect(page.locator("#sync-error")).to_have_count(0)
