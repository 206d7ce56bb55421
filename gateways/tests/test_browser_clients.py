"""Client pages in a real chromium (portal.md §8 scenarios 58-60). Scenario 58 follows presence
over the `/live` socket, so it runs on daphne (`portal_server`) with a real client socket."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.services.tokens import token_create
from accounts.tests.factories import ActorFactory, IdentityFactory
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from gateways.models import Client
from gateways.tests.factories import ClientFactory
from tests.portal_browser import base_url, client_socket, sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def acme(live_server: Any, settings: Any) -> Acme:
    settings.EXTERNAL_URL = live_server.url
    cache.clear()
    return make_acme()


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def _confirm(page: Page, dialog_id: str, button: str) -> None:
    page.locator(f"#{dialog_id}").get_by_role("button", name=button, exact=True).click()


@pytest.mark.django_db(transaction=True)
def test_58_clients_list_filters_and_presence(
    portal_server: Any,
    page: Page,
) -> None:
    acme = make_acme()
    jane = ActorFactory(account=acme.account, name="Jane")
    identity = IdentityFactory(
        actor=jane,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier="jane@acme.test",
    )
    issued = token_create(
        type="client",
        account=acme.account,
        actor=jane,
        identity=identity,
        expires_at=timezone.now() + timedelta(days=1),
        nonce="n0nce",
    )
    idle = ClientFactory(actor=ActorFactory(account=acme.account, name="Bob"), name="bob-phone")
    sign_in_page(page, portal_server, acme.admin_identity)
    url = f"{base_url(portal_server)}/acme/clients"

    with client_socket(portal_server, issued.encoded, name="jane-laptop"):
        online = Client.objects.get(account=acme.account, name="jane-laptop")
        page.goto(url)
        expect(page).to_have_title("Clients · Firezone")
        expect(page.locator("body")).to_have_attribute("data-live", "connected")
        expect(page.locator(f"#client-{online.pk}")).to_contain_text("Online")
        expect(page.locator(f"#client-{idle.pk}")).to_contain_text("Offline")

        presence = page.locator('fieldset[aria-label="Presence"]')
        presence.get_by_text("Online", exact=True).click()
        expect(page).to_have_url(re.compile(r"clients_filter%5Bpresence%5D=online"))
        expect(page.locator(f"#client-{idle.pk}")).to_have_count(0)
        expect(page.locator(f"#client-{online.pk}")).to_be_visible()
        assert "clients_filter[presence]=online" in page.evaluate(
            "decodeURIComponent(window.location.search)"
        )

        presence.get_by_text("All", exact=True).click()
        expect(page.locator(f"#client-{idle.pk}")).to_be_visible()
        row = page.locator(f"#client-{online.pk}")
        expect(row).to_contain_text("Online")
    # The socket closed: the presence leave re-queries the table, no manual reload.
    expect(row).to_contain_text("Offline")
    expect(row).not_to_contain_text("Online")


def test_59_verify_client(live_server: Any, page: Page, acme: Acme) -> None:
    device = ClientFactory(actor=acme.admin, name="admin-laptop")
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/clients/{device.pk}")
    expect(page).to_have_title("Client admin-laptop · Firezone")
    expect(page.locator("#client-verification")).to_have_text("Not Verified")
    page.get_by_role("button", name="Verify", exact=True).click()
    dialog = page.locator("#verify-client-dialog")
    expect(dialog).to_contain_text("Confirm verification of Client")
    expect(dialog).to_contain_text("Are you sure you want to verify this Client?")
    _confirm(page, "verify-client-dialog", "Verify")

    verification = page.locator("#client-verification")
    expect(verification).to_contain_text(re.compile(r"Verified .+ by Admin"))
    expect(page.get_by_role("button", name="Remove verification")).to_be_visible()
    expect(page.get_by_role("button", name="Verify", exact=True)).to_have_count(0)

    page.goto(f"{live_server.url}/acme/clients")
    expect(page.locator(f"#client-{device.pk} .verified-shield")).to_be_visible()


def test_60_delete_client(live_server: Any, page: Page, acme: Acme) -> None:
    device = ClientFactory(actor=acme.admin, name="admin-laptop")
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/clients/{device.pk}")
    page.get_by_role("button", name="Delete Client").click()
    dialog = page.locator("#delete-client-dialog")
    expect(dialog).to_contain_text("Confirm deletion of client")
    expect(dialog).to_contain_text("disable the owning actor")
    _confirm(page, "delete-client-dialog", "Delete")

    expect(page).to_have_url(f"{live_server.url}/acme/clients")
    expect(page.locator(".flash-group")).to_contain_text("Client was deleted.")
    assert not Client.objects.filter(pk=device.pk).exists()
