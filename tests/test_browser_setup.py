"""Acceptance of issue 6: a person builds a working setup from the browser alone — a site, a
gateway token (and a gateway connecting with it), a group with members, a resource and a policy
— and a client of a member then receives the resource (over the real server, daphne)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.services.tokens import token_create
from accounts.tests.portal import make_acme
from tests import live as harness
from tests import portal_browser
from tests.portal_browser import base_url, client_socket, gateway_socket, sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

live_daphne, server = harness.live_daphne, portal_browser.portal_server


@pytest.mark.django_db(transaction=True)
def test_site_gateway_resource_policy_from_the_browser(server: Any, page: Page) -> None:
    acme = make_acme()
    sign_in_page(page, server, acme.admin_identity)
    url = base_url(server)

    # A site.
    page.goto(f"{url}/acme/sites")
    page.get_by_role("link", name="Add Site").click()
    page.get_by_label("Name").fill("HQ")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Site: HQ")).to_be_visible()
    site_url = page.url

    # A gateway token, and a gateway connecting with it.
    page.get_by_role("link", name="Deploy Gateway").click()
    token = (page.locator("#terraform-token code").text_content() or "").strip()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    gateway = gateway_socket(server, token, name="edge")
    try:
        expect(page.get_by_text("Connected, click to continue")).to_be_visible()
        page.get_by_text("Connected, click to continue").click()
        expect(page).to_have_url(site_url)
        expect(page.get_by_role("link", name="edge")).to_be_visible()

        # A group with the admin in it.
        page.goto(f"{url}/acme/groups")
        page.get_by_role("link", name="Add Group").click()
        page.get_by_label("Group Name").fill("Eng")
        page.get_by_role("button", name="Next: Select Members").click()
        page.locator(f"#toggle-actor-{acme.admin.pk}").click()
        # The toggle is a link: wait for its page, or the next click lands on the old one.
        expect(page.locator(f"#actor-{acme.admin.pk}")).to_have_class("pending-add")
        page.locator("#save-actors").click()
        page.locator("#save-actors-dialog").get_by_role("button", name="Confirm").click()
        expect(page.locator("#actors")).to_contain_text("Admin")

        # A resource in the site, then the policy wizard it leads to.
        page.goto(f"{url}/acme/resources/new")
        page.get_by_label("DNS", exact=True).check()
        page.locator("#resource_address").press_sequentially("gitlab.company.com")
        page.get_by_label("HQ", exact=True).check()
        page.get_by_role("button", name="Save").click()
        expect(page).to_have_url(re.compile(r"/acme/policies/new\?resource_id="))
        page.locator("#policy_actor_group_id").select_option(label="Eng")
        page.get_by_role("button", name="Create Policy").click()
        expect(page).to_have_url(re.compile(r"/acme/resources/[0-9a-f-]+$"))
        expect(page.locator("body")).to_contain_text("Eng")

        # The admin's client now receives the resource.
        issued = token_create(
            type="client",
            account=acme.account,
            actor=acme.admin,
            identity=acme.admin_identity,
            expires_at=timezone.now() + timedelta(days=1),
            nonce="n0nce",
        )
        with client_socket(server, issued.encoded) as client:
            init = client.init
        addresses = [r.get("address") for r in init["payload"]["resources"]]
        assert "gitlab.company.com" in addresses
    finally:
        gateway.close()
