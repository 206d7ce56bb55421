"""Sites and gateways in a real chromium (portal.md §8 scenarios 34-40, §7 gateway presence).

Pages that must change by themselves run against daphne (`portal_server`) with real gateway
sockets; the others use pytest-django's WSGI `live_server`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from django.db import connection
from playwright.sync_api import Page, expect
from websockets.exceptions import ConnectionClosed

from accounts.models import Account, Token
from accounts.tests.factories import subject_for
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from gateways.models import Gateway, Site
from gateways.services.sites import site_token_create
from gateways.tests.factories import GatewayFactory, SiteFactory
from resources.tests.factories import ConnectionFactory, ResourceFactory
from tests.portal_browser import (
    GATEWAY_UA,
    SyncDevice,
    base_url,
    gateway_socket,
    public_key,
    sign_in_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

T = TypeVar("T")


def _elsewhere(fn: Callable[..., T], **kwargs: Any) -> T:
    """Run a service outside Playwright's event loop thread (it publishes synchronously)."""

    def run() -> T:
        try:
            return fn(**kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def _gateway_device(server: Any, token: str, external_id: str, name: str) -> SyncDevice:
    """A gateway socket reconnecting as an existing gateway (same FIREZONE_ID)."""
    params = {"token": token, "external_id": external_id, "name": name, "public_key": public_key()}
    device = SyncDevice(server, "/gateway/websocket", params, GATEWAY_UA)
    device.send("gateway", "phx_join", {})
    device.expect("init")
    return device


def _connected(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-live", "connected")


def _closed(device: SyncDevice) -> bool:
    try:
        while True:
            device.recv(timeout=10)
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False


def test_34_create_site(live_server: Any, page: Page) -> None:
    acme = make_acme()
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/sites")
    page.get_by_role("link", name="Add Site").click()
    expect(page).to_have_title("New Site · Firezone")
    page.get_by_label("Name").fill("HQ")
    page.get_by_role("button", name="Create").click()
    site = Site.objects.get(account=acme.account, name="HQ")
    expect(page).to_have_url(f"{live_server.url}/acme/sites/{site.pk}")
    expect(page.get_by_role("heading", name="Site: HQ")).to_be_visible()

    page.goto(f"{live_server.url}/acme/sites/new")
    page.get_by_label("Name").fill("HQ")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("has already been taken")).to_be_visible()
    page.get_by_label("Name").fill("x" * 65)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("should be at most 64 character(s)")).to_be_visible()
    assert Site.objects.filter(account=acme.account).count() == 1


def test_35_site_limit(live_server: Any, page: Page) -> None:
    acme = make_acme(limits={"gateway_groups_count": 1})
    SiteFactory(account=acme.account)
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/sites/new")
    page.get_by_label("Name").fill("Second")
    page.get_by_role("button", name="Create").click()
    expect(
        page.get_by_text(
            "You have reached the maximum number of sites allowed by your subscription plan."
        )
    ).to_be_visible()
    assert not Site.objects.filter(name="Second").exists()


@pytest.mark.django_db(transaction=True)
def test_36_deploy_gateway_and_live_connect(portal_server: Any, page: Page) -> None:
    acme = make_acme()
    site = SiteFactory(account=acme.account, name="HQ")
    sign_in_page(page, portal_server, acme.admin_identity)
    url = base_url(portal_server)
    page.goto(f"{url}/acme/sites/{site.pk}")
    page.get_by_role("link", name="Deploy Gateway").click()
    expect(page).to_have_title("New Site Gateway · Firezone")
    for tab in ("systemd", "Docker", "Terraform", "Custom"):
        expect(page.get_by_role("tab", name=tab, exact=True)).to_be_visible()
    command = page.locator("#systemd-command code")
    expect(command).to_contain_text("FIREZONE_TOKEN=")
    waiting = page.get_by_text("Waiting for connection...")
    expect(waiting).to_be_visible()
    expect(page.get_by_text("Connected, click to continue")).to_be_hidden()

    page.get_by_role("tab", name="Docker").click()
    expect(page).to_have_url(re.compile(r"\?method=docker-instructions$"))
    expect(page.locator("#docker-command code")).to_contain_text("docker run")
    expect(page.locator("#systemd-instructions")).to_be_hidden()

    token = (page.locator("#terraform-token code").text_content() or "").strip()
    assert Token.objects.filter(gateway_group=site).count() == 1  # tab switch kept the token
    _connected(page)
    with gateway_socket(portal_server, token):
        expect(page.get_by_text("Connected, click to continue")).to_be_visible()
        expect(waiting).to_be_hidden()
        page.get_by_text("Connected, click to continue").click()
        expect(page).to_have_url(f"{url}/acme/sites/{site.pk}")


@pytest.mark.django_db(transaction=True)
def test_37_online_gateways_update_live(portal_server: Any, page: Page) -> None:
    acme = make_acme()
    site = SiteFactory(account=acme.account, name="HQ")
    issued = _elsewhere(site_token_create, subject=subject_for(acme.admin), site=site)
    sign_in_page(page, portal_server, acme.admin_identity)
    url = base_url(portal_server)
    page.goto(f"{url}/acme/sites/{site.pk}")
    expect(page.get_by_text("No gateways to display.")).to_be_visible()
    _connected(page)

    device = gateway_socket(portal_server, issued.encoded, name="gw-live")
    gateway = Gateway.objects.get(group=site)
    row = page.locator(f"#gateway-{gateway.pk}")
    expect(row).to_contain_text("gw-live")
    expect(row).to_contain_text("Online")
    device.close()
    expect(row).to_have_count(0)
    expect(page.get_by_text("No gateways to display.")).to_be_visible()

    # Gateway detail flips Online/Offline in place.
    page.goto(f"{url}/acme/gateways/{gateway.pk}")
    status = page.locator("#gateway .connection-status")
    expect(status).to_have_text("Offline")
    _connected(page)
    device = _gateway_device(portal_server, issued.encoded, gateway.external_id, "gw-live")
    expect(status).to_have_text("Online")
    device.close()
    expect(page.locator("#gateway .connection-status")).to_have_text("Offline")


@pytest.mark.django_db(transaction=True)
def test_gateway_coming_online_turns_its_row_green(
    portal_server: Any,
    page: Page,
) -> None:
    acme = make_acme()
    site = SiteFactory(account=acme.account, name="HQ")
    known = GatewayFactory(group=site, name="edge", external_id="edge-1")
    issued = _elsewhere(site_token_create, subject=subject_for(acme.admin), site=site)
    sign_in_page(page, portal_server, acme.admin_identity)
    url = base_url(portal_server)

    # All gateways of the site: the known, offline row turns Online in place.
    page.goto(f"{url}/acme/sites/{site.pk}/gateways")
    row_status = page.locator(f"#gateway-{known.pk} .connection-status")
    expect(row_status).to_have_text("Offline")
    _connected(page)
    page.evaluate("window.__sameDocument = true")
    device = _gateway_device(portal_server, issued.encoded, known.external_id, "edge")
    try:
        expect(row_status).to_have_text("Online")
        expect(row_status).to_have_class(re.compile(r"\bstatus-online\b"))
        assert page.evaluate("window.__sameDocument") is True  # no reload

        # The site page shows it among the online gateways, and the Sites list peeks it.
        page.goto(f"{url}/acme/sites/{site.pk}")
        expect(page.locator(f"#gateway-{known.pk} .status-online")).to_have_text("Online")
        page.goto(f"{url}/acme/sites")
        expect(page.locator(f"#group-{site.pk}")).to_contain_text("edge")
        _connected(page)  # subscribed before the gateway leaves
    finally:
        device.close()
    expect(page.locator(f"#group-{site.pk}")).not_to_contain_text("edge")


@pytest.mark.django_db(transaction=True)
def test_38_revoke_all_site_tokens(portal_server: Any, page: Page) -> None:
    acme = make_acme()
    site = SiteFactory(account=acme.account, name="HQ")
    issued = _elsewhere(site_token_create, subject=subject_for(acme.admin), site=site)
    sign_in_page(page, portal_server, acme.admin_identity)
    url = base_url(portal_server)
    device = gateway_socket(portal_server, issued.encoded)
    try:
        page.goto(f"{url}/acme/sites/{site.pk}")
        page.get_by_role("button", name="Revoke All").click()
        dialog = page.locator("#revoke-all-dialog")
        expect(dialog).to_contain_text("Confirm revocation of all tokens")
        dialog.get_by_role("button", name="Revoke All").click()
        expect(page.get_by_text("1 token(s) were revoked.")).to_be_visible()
        assert _closed(device)
    finally:
        device.close()
    assert not Token.objects.filter(gateway_group=site).exists()


def test_39_delete_site(live_server: Any, page: Page) -> None:
    acme = make_acme()
    site = SiteFactory(account=acme.account, name="Doomed")
    ConnectionFactory(resource=ResourceFactory(account=acme.account), gateway_group=site)
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/sites/{site.pk}")
    page.get_by_role("button", name="Delete Site").click()
    dialog = page.locator("#delete-site-dialog")
    expect(dialog).to_contain_text("Are you sure you want to delete this Site?")
    dialog.get_by_role("button", name="Delete Site").click()
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    expect(page.get_by_text("Doomed")).to_have_count(0)
    assert not Site.objects.filter(pk=site.pk).exists()


def test_40_internet_site_upsell(live_server: Any, page: Page) -> None:
    acme = make_acme()
    features = {**acme.account.features, "internet_resource": False}
    Account.objects.filter(pk=acme.account.pk).update(features=features)
    internet = SiteFactory(account=acme.account, internet=True)
    ConnectionFactory(
        resource=ResourceFactory(account=acme.account, internet=True), gateway_group=internet
    )
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/sites")
    banner = page.locator("#internet-site-banner")
    # Not provisioned (billing off): the badge is text, not a link (billing/tests has the link).
    expect(banner.get_by_text("UPGRADE TO UNLOCK")).to_be_visible()
    expect(banner.get_by_role("link", name=re.compile("UPGRADE TO UNLOCK"))).to_have_count(0)
    expect(banner.get_by_text("Manage Internet Site")).to_have_count(0)

    Account.objects.filter(pk=acme.account.pk).update(
        features={**features, "internet_resource": True}
    )
    page.reload()
    expect(banner.get_by_text("UPGRADE TO UNLOCK")).to_have_count(0)
    expect(banner.locator("[title=Offline]")).to_have_count(1)
    banner.get_by_role("link", name="Manage Internet Site").click()
    expect(page).to_have_url(f"{live_server.url}/acme/sites/{internet.pk}")
    expect(page.get_by_role("heading", name="Site: Internet")).to_be_visible()
