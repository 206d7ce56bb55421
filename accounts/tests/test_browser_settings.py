"""Settings pages in a real chromium (portal.md §8 scenarios 65, 66, 67 and 69): DNS settings,
account name and deletion request, notifications, and the API clients gate with a client, its
token reveal and revocation (the REST API calls of scenario 69 belong to the API's own tests)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from playwright.sync_api import Page, expect

from accounts.models import Account, Actor, Token
from accounts.tests.factories import ALL_FEATURES
from accounts.tests.portal import Acme, make_acme, session_cookie_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def acme(live_server: Any, settings: Any) -> Acme:
    settings.EXTERNAL_URL = live_server.url
    settings.FEATURES = {**settings.FEATURES, "rest_api": True}
    cache.clear()
    return make_acme()


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def _flash(page: Page, text: str) -> None:
    expect(page.locator(".flash-group")).to_contain_text(text)


def _confirm(page: Page, dialog_id: str, button: str) -> None:
    page.locator(f"#{dialog_id}").get_by_role("button", name=button, exact=True).click()


def _account(acme: Acme) -> Account:
    return Account.objects.get(pk=acme.account.pk)


def test_65_dns_settings(live_server: Any, page: Page, acme: Acme) -> None:
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/settings/dns")
    expect(page).to_have_title("DNS · Firezone")
    expect(page.get_by_text("No upstream resolvers have been configured.")).to_be_visible()

    domain = page.get_by_label("Search Domain")
    domain.fill("example")
    expect(page.get_by_text("must be a valid fully-qualified domain name")).to_be_visible()
    domain.fill("example.com")
    expect(page.get_by_text("must be a valid fully-qualified domain name")).to_have_count(0)

    page.get_by_role("button", name="New Resolver").click()
    expect(page.get_by_text("No upstream resolvers have been configured.")).to_be_hidden()
    expect(page.get_by_text("in the order they are listed below")).to_be_visible()
    page.locator("#resolver-0-address").fill("8.8.8.8")
    page.get_by_role("button", name="New Resolver").click()
    # The new row's input listens for typing once htmx has processed the swapped-in row (a person
    # cannot type in those milliseconds; Playwright can): wait for htmx's data on the element.
    page.wait_for_function(
        "() => !!document.querySelector('#resolver-1-address')?.['htmx-internal-data']?.initHash"
    )
    page.locator("#resolver-1-address").fill("8.8.8.8:53")
    expect(page.get_by_text("all addresses must be unique")).to_be_visible()

    page.get_by_role("button", name="Remove resolver").nth(1).click()
    expect(page.locator("#resolver-1-address")).to_have_count(0)
    expect(page.get_by_text("all addresses must be unique")).to_have_count(0)

    page.get_by_role("button", name="Save DNS Settings").click()
    _flash(page, "Save successful!")
    expect(page).to_have_url(f"{live_server.url}/acme/settings/dns")
    expect(page.get_by_label("Search Domain")).to_have_value("example.com")
    expect(page.locator("#resolver-0-address")).to_have_value("8.8.8.8")
    expect(page.locator("#resolver-1-address")).to_have_count(0)
    config = _account(acme).config
    assert config["search_domain"] == "example.com"
    assert config["clients_upstream_dns"] == [{"protocol": "ip_port", "address": "8.8.8.8"}]

    page.reload()
    expect(page.get_by_label("Search Domain")).to_have_value("example.com")
    expect(page.locator("#resolver-0-address")).to_have_value("8.8.8.8")


def test_66_account_settings(live_server: Any, page: Page, acme: Acme) -> None:
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/settings/account")
    expect(page).to_have_title("Account · Firezone")
    page.get_by_role("link", name="Edit Account").click()
    expect(page).to_have_title("Edit Account · Firezone")
    page.get_by_label("Name").fill("Acme Corp")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(f"{live_server.url}/acme/settings/account")
    table = page.locator("#account")
    expect(table).to_contain_text("Acme Corp")
    expect(table).to_contain_text("acme")
    account = _account(acme)
    assert account.name == "Acme Corp" and account.slug == "acme"

    page.locator("#delete-account").click()
    dialog = page.locator("#delete-account-dialog")
    expect(dialog).to_contain_text("Confirm Account Deletion")
    expect(dialog).to_contain_text("This account acme will be scheduled for complete deletion.")
    _confirm(page, "delete-account-dialog", "Delete Account")

    expect(page.get_by_text("A request has been sent to delete your account.")).to_be_visible()
    button = page.get_by_role("button", name="Delete Requested")
    expect(button).to_be_visible()
    expect(button).to_be_disabled()
    (request,) = mail.outbox
    assert request.subject == "ACCOUNT DELETE REQUEST - acme"
    assert request.to == ["support@firezone.dev"]


def test_67_notifications(live_server: Any, page: Page, acme: Acme) -> None:
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/settings/account")
    row = page.locator("#notification-outdated_gateway")
    expect(row).to_contain_text("Gateway Upgrade Available")
    expect(row.locator(".badge")).to_have_text("Enabled")

    page.get_by_role("link", name="Edit Notifications").click()
    expect(page.get_by_text("Edit account notifications")).to_be_visible()
    expect(page.locator("#outdated_gateway_enabled_true")).to_be_checked()
    page.locator("#outdated_gateway_enabled_false").check()
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(f"{live_server.url}/acme/settings/account")
    expect(page.locator("#notification-outdated_gateway .badge")).to_have_text("Disabled")
    assert _account(acme).config["notifications"]["outdated_gateway"]["enabled"] is False


def test_69_api_clients_gated(live_server: Any, page: Page, acme: Acme) -> None:
    acme.account.features = {**ALL_FEATURES, "rest_api": False}
    acme.account.save()
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/settings/api_clients")
    expect(page).to_have_url(f"{live_server.url}/acme/settings/api_clients/beta")
    expect(page.get_by_text("The REST API is currently in closed beta.")).to_be_visible()
    page.get_by_role("button", name=re.compile("Click here")).click()
    expect(page.get_by_text("Your request to join the closed beta has been made.")).to_be_visible()
    (request,) = mail.outbox
    assert request.subject == "REST API Beta Request - acme"

    # With the feature: a client "CI", its token shown once, then revoked.
    acme.account.features = dict(ALL_FEATURES)
    acme.account.save()
    page.goto(f"{live_server.url}/acme/settings/api_clients/beta")
    expect(page).to_have_url(f"{live_server.url}/acme/settings/api_clients")
    expect(page.get_by_text("No API Clients to display.")).to_be_visible()
    page.get_by_role("link", name="Add API Client").click()
    page.get_by_label("Name").fill("CI")
    page.get_by_role("button", name="Next: Add a token").click()

    actor = Actor.objects.get(account=acme.account, type="api_client", name="CI")
    expect(page).to_have_url(f"{live_server.url}/acme/settings/api_clients/{actor.pk}/new_token")
    expect(page).to_have_title("New API Token · Firezone")
    page.get_by_label("Name").fill("deploy")
    page.get_by_role("button", name="Create API Token").click()
    expect(page.get_by_text("Your API Token:")).to_be_visible()
    expect(page.get_by_text("It won't be shown again.")).to_be_visible()
    encoded = page.locator("#token code").inner_text().strip()
    assert encoded.startswith(".")
    token = Token.objects.get(actor=actor)
    assert token.type == "api_client" and token.name == "deploy"

    page.get_by_role("link", name="Back to API Client").click()
    expect(page).to_have_title("API Client CI · Firezone")
    row = page.locator(f"#api-client-token-{token.pk}")
    expect(row).to_contain_text("deploy")
    row.get_by_role("button", name="Revoke").click()
    dialog = page.locator(f"#revoke-token-{token.pk}-dialog")
    expect(dialog).to_contain_text("Are you sure you want to revoke this token?")
    _confirm(page, f"revoke-token-{token.pk}-dialog", "Revoke")
    _flash(page, "Token was revoked.")
    expect(page.get_by_text("No API tokens to display.")).to_be_visible()
    assert not Token.objects.filter(pk=token.pk).exists()
