"""Settings → Billing in a real chromium (portal.md §8 scenario 68; billing_sync_jobs.md §1.11,
§1.13): a provisioned account's page with its limits, "Manage" reaching the Stripe portal URL
the fake Stripe returns (the navigation to billing.stripe.com is answered by Playwright, nothing
leaves the machine), the error when Stripe fails, the limits job's banner linking here, and the
404 of an unprovisioned account.

pytest-django's `live_server` runs in this process, so the `stripe_fake` fixture's settings
(billing on, the fake's address) reach it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from accounts.models import Account
from accounts.tests.factories import ActorFactory
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from billing import tasks
from gateways.tests.factories import ClientFactory
from tests.stripe_fake import FIXTURE_CUSTOMER, StripeFake, fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PORTAL_URL = fixture("stripe_billing_portal_session")["url"]
STRIPE = {
    "customer_id": FIXTURE_CUSTOMER,
    "product_name": "Team",
    "billing_email": "billing@acme.test",
    "support_type": "email_and_slack",
}


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def _stripe_portal(page: Page) -> list[str]:
    """Answer navigations to billing.stripe.com with a stand-in page; returns the URLs asked."""
    asked: list[str] = []

    def fulfil(route: Route) -> None:
        asked.append(route.request.url)
        route.fulfill(
            status=200,
            content_type="text/html",
            body="<title>Stripe billing portal</title><h1>Stripe portal</h1>",
        )

    page.route(re.compile(r"^https://billing\.stripe\.com/"), fulfil)
    return asked


def test_68_billing_page_and_manage(
    live_server: Any, page: Page, stripe_fake: StripeFake, settings: Any
) -> None:
    settings.EXTERNAL_URL = live_server.url
    acme = make_acme(
        legal_name="Acme Inc.",
        metadata={"stripe": STRIPE},
        limits={"users_count": 200, "monthly_active_users_count": 1},
    )
    for _ in range(2):
        ClientFactory(actor=ActorFactory(account=acme.account))
    asked = _stripe_portal(page)
    _sign_in(page, live_server, acme)

    page.goto(f"{live_server.url}/acme/sites")
    nav = page.locator("#drawer-navigation")
    nav.get_by_text("Settings", exact=True).click()  # the closed Settings group
    nav.get_by_role("link", name="Billing", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/acme/settings/billing")
    expect(page).to_have_title("Billing · Firezone")
    info = page.locator("#billing")
    expect(info).to_contain_text("Current Plan")
    expect(info).to_contain_text("Team")
    expect(info.get_by_role("link", name="Contact sales")).to_have_attribute(
        "href", re.compile(r"^mailto:support@firezone\.dev\?subject=Billing%20question%3A%20Acme")
    )
    expect(info).to_contain_text("billing@acme.test")
    expect(info).to_contain_text("Acme Inc.")
    limits = page.locator("#billing-limits")
    expect(limits.locator("tr", has_text="Users").first).to_contain_text("3 used / 200 allowed")
    seats = limits.locator("tr", has_text="Seats")
    expect(seats).to_contain_text("2 used / 1 allowed")
    expect(seats.locator(".over-limit")).to_have_text("2 used")
    expect(page.locator("#support")).to_contain_text(
        "Please send us a message in the shared Slack channel or an email."
    )
    expect(page.locator("#danger-zone")).to_contain_text(
        "To disable your account and schedule it for deletion, please contact support."
    )

    page.get_by_role("button", name="Manage").click()
    expect(page).to_have_url(PORTAL_URL)
    expect(page.get_by_role("heading", name="Stripe portal")).to_be_visible()
    assert asked == [PORTAL_URL]
    (call,) = stripe_fake.requests("POST", "/v1/billing_portal/sessions")
    assert call.form == {
        "customer": FIXTURE_CUSTOMER,
        "return_url": f"{live_server.url}/acme/settings/billing",
    }


def test_68_manage_when_stripe_fails(live_server: Any, page: Page, stripe_fake: StripeFake) -> None:
    acme = make_acme(metadata={"stripe": STRIPE})
    asked = _stripe_portal(page)
    _sign_in(page, live_server, acme)
    stripe_fake.down()
    page.goto(f"{live_server.url}/acme/settings/billing")
    page.get_by_role("button", name="Manage").click()
    error = page.locator("#billing-error")
    expect(error).to_contain_text(
        "Billing portal is temporarily unavailable, please try again later."
    )
    expect(error.get_by_role("link", name="contact support")).to_have_attribute(
        "href", re.compile(r"^mailto:support@firezone\.dev\?")
    )
    expect(page.locator("#billing")).to_contain_text("Current Plan")
    assert asked == []


def test_68_limits_banner_links_to_billing(
    live_server: Any, page: Page, stripe_fake: StripeFake
) -> None:
    acme = make_acme(metadata={"stripe": STRIPE}, limits={"users_count": 1})
    ActorFactory(account=acme.account)
    tasks.check_account_limits()
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/sites")
    banner = page.locator(".banner-warning")
    expect(banner).to_contain_text("You have exceeded the following limits: users.")
    banner.get_by_role("link", name="billing information").click()
    expect(page).to_have_url(f"{live_server.url}/acme/settings/billing")
    expect(page.locator("#billing-limits")).to_contain_text("2 used / 1 allowed")


def test_68_unprovisioned_account_has_no_billing_page(
    live_server: Any, page: Page, stripe_fake: StripeFake
) -> None:
    acme = make_acme()
    Account.objects.filter(pk=acme.account.pk).update(
        warning="You have exceeded the following limits: users"
    )
    _sign_in(page, live_server, acme)
    response = page.goto(f"{live_server.url}/acme/settings/billing")
    assert response is not None and response.status == 404
    page.goto(f"{live_server.url}/acme/settings/account")
    nav = page.locator("#drawer-navigation")
    expect(nav.get_by_role("link", name="Account", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Billing", exact=True)).to_have_count(0)
    expect(nav.get_by_role("link", name="Identity Providers")).to_be_visible()
    banner = page.locator(".banner-warning")
    expect(banner).to_contain_text("You have exceeded the following limits: users.")
    expect(banner.get_by_role("link")).to_have_count(0)
