"""Relay pages in a real chromium (portal.md §8 scenario 70), plus the live part of "Deploy
Relay" (§4.8.5, §7): a relay connecting with the page's token turns "Waiting for connection..."
into "Connected, click to continue", and the group page follows the relay's presence."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from accounts.tests.factories import ALL_FEATURES
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from gateways.models import RelayGroup
from gateways.tests.factories import RelayGroupFactory
from tests.portal_browser import SyncDevice, base_url, sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RELAY_UA = "Linux/6.1.0 relay/1.4.5 (x86_64)"


@pytest.fixture
def acme(live_server: Any, settings: Any) -> Acme:
    settings.EXTERNAL_URL = live_server.url
    settings.FEATURES = {**settings.FEATURES, "self_hosted_relays": True}
    cache.clear()
    return make_acme()


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def relay_socket(server: Any, token: str, ipv4: str = "198.51.100.10") -> SyncDevice:
    """Connect and join a self-hosted relay with a relay group token; returns after `init`."""
    device = SyncDevice(
        server,
        "/relay/websocket",
        {"token": token, "ipv4": ipv4, "port": "3478", "name": "relay-eu-1"},
        RELAY_UA,
    )
    device.send("relay", "phx_join", {"stamp_secret": secrets.token_hex(16)})
    device.expect("init")
    return device


def test_70_relays_gated(live_server: Any, page: Page, acme: Acme) -> None:
    acme.account.features = {**ALL_FEATURES, "self_hosted_relays": False}
    acme.account.save()
    _sign_in(page, live_server, acme)
    response = page.goto(f"{live_server.url}/acme/relay_groups")
    assert response is not None and response.status == 404
    expect(page.get_by_text("Sorry, we couldn't find this page.")).to_be_visible()
    page.goto(f"{live_server.url}/acme/settings/account")
    expect(page.locator("#drawer-navigation")).to_contain_text("Policies")
    expect(page.locator("#drawer-navigation").get_by_role("link", name="Relays")).to_have_count(0)

    acme.account.features = dict(ALL_FEATURES)
    acme.account.save()
    page.reload()
    page.locator("#drawer-navigation").get_by_role("link", name="Relays").click()
    expect(page).to_have_title("Relays · Firezone")
    page.get_by_role("link", name="Add Instance Group").first.click()
    expect(page).to_have_title("New Relay Group · Firezone")
    page.get_by_label("Name Prefix").fill("eu")
    page.get_by_role("button", name="Save").click()

    group = RelayGroup.objects.get(account=acme.account, name="eu")
    expect(page).to_have_url(f"{live_server.url}/acme/relay_groups/{group.pk}")
    expect(page.locator("#relay-group-title")).to_contain_text("Relay Instance Group: eu")
    expect(page.get_by_text("No relay instances to display")).to_be_visible()
    page.get_by_role("link", name="Deploy", exact=True).click()

    expect(page).to_have_title("New Relay · Firezone")
    expect(page.get_by_text("Waiting for connection...")).to_be_visible()
    expect(page.get_by_text("Connected, click to continue")).to_be_hidden()
    expect(page.locator("#systemd-instructions")).to_contain_text("FIREZONE_TOKEN=")
    expect(page.locator("#docker-instructions")).to_be_hidden()
    page.get_by_role("tab", name="Docker").click()
    expect(page.locator("#docker-instructions")).to_be_visible()
    expect(page.locator("#docker-instructions")).to_contain_text("docker run")
    expect(page.locator("#systemd-instructions")).to_be_hidden()
    assert group.tokens.count() == 1

    # Skipping the wait asks first; dismissing stays on the page.
    messages: list[str] = []

    def dismiss(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_text("Waiting for connection...").click()
    expect(page).to_have_title("New Relay · Firezone")
    assert messages == ["Do you want to skip waiting for relay to be connected?"]
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_text("Waiting for connection...").click()
    expect(page).to_have_url(f"{live_server.url}/acme/relay_groups/{group.pk}")


@pytest.mark.django_db(transaction=True)
def test_deploy_relay_connects_live(
    portal_server: Any,
    page: Page,
) -> None:
    acme = make_acme()
    group = RelayGroupFactory(account=acme.account, name="eu")
    sign_in_page(page, portal_server, acme.admin_identity)
    page.goto(f"{base_url(portal_server)}/acme/relay_groups/{group.pk}/new_token")
    expect(page.get_by_text("Waiting for connection...")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    text = page.locator("#systemd-unit code").inner_text()
    token = re.search(r'FIREZONE_TOKEN=([^"]+)"', text)
    assert token is not None

    with relay_socket(portal_server, token.group(1)):
        expect(page.get_by_text("Connected, click to continue")).to_be_visible()
        expect(page.get_by_text("Waiting for connection...")).to_be_hidden()
        page.get_by_text("Connected, click to continue").click()
        expect(page).to_have_url(f"{base_url(portal_server)}/acme/relay_groups/{group.pk}")
        expect(page.locator("body")).to_have_attribute("data-live", "connected")
        row = page.locator("#relays tr", has_text="relay-eu-1")
        expect(row).to_contain_text("Online")
    # The group page follows the relay's presence.
    expect(row).to_contain_text("Offline")
