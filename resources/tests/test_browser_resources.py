"""Resource pages in a real chromium (portal.md §8 scenarios 41-45)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from accounts.tests.factories import GroupFactory, subject_for
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from resources.models import Resource
from resources.services.policies import policy_create
from resources.tests.factories import ConnectionFactory, ResourceFactory, SiteFactory
from tests import portal_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def acme(live_server: Any) -> Acme:
    cache.clear()
    return make_acme()


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def _error_for(page: Page, field: str) -> Any:
    return page.locator(f'[data-validation-error-for="{field}"]')


def test_41_create_dns_resource_then_policy_wizard(
    live_server: Any, page: Page, acme: Acme
) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/resources")
    page.get_by_role("link", name="Add Resource").first.click()
    expect(page).to_have_url(re.compile(r"/acme/resources/new$"))
    address = page.locator("#resource_address")
    expect(address).to_be_disabled()
    expect(address).to_have_attribute("placeholder", "First select a type above")

    page.get_by_label("DNS", exact=True).check()
    expect(address).to_be_enabled()
    expect(address).to_have_attribute("placeholder", "gitlab.company.com")
    expect(page.get_by_text("Wildcard matching is supported:")).to_be_visible()
    expect(page.get_by_text("IP Stack", exact=True)).to_be_visible()
    address.press_sequentially("gitlab.company.com")
    expect(page.locator("#resource_name")).to_have_value("gitlab.company.com")
    page.get_by_label("HQ", exact=True).check()
    ports = page.locator("#resource_filters_tcp_ports")
    expect(ports).to_be_disabled()
    page.get_by_label("TCP", exact=True).check()
    expect(ports).to_be_enabled()
    ports.fill("80, 443")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(re.compile(r"/acme/policies/new\?resource_id="))
    expect(page.get_by_text("Resource gitlab.company.com created successfully.")).to_be_visible()
    resource = Resource.objects.get(account=acme.account)
    assert page.url.endswith(f"/acme/policies/new?resource_id={resource.pk}")
    assert resource.filters == [{"protocol": "tcp", "ports": ["80", "443"]}]
    assert list(resource.connections.values_list("gateway_group_id", flat=True)) == [hq.pk]


def test_42_resource_validation(live_server: Any, page: Page, acme: Acme) -> None:
    SiteFactory(account=acme.account, name="HQ")
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/resources/new")
    address = page.locator("#resource_address")
    expect(page.get_by_label("HQ", exact=True)).not_to_be_checked()

    errors = _error_for(page, "resource[address]")

    def enter(type_label: str, value: str) -> None:
        page.get_by_label(type_label, exact=True).check()
        address.fill(value)

    # Errors appear while typing (validate on change), before any save.
    enter("DNS", "10.0.0.1")
    expect(errors).to_have_text("IP addresses are not allowed, use an IP Resource instead")
    enter("DNS", "foo.localhost")
    expect(errors).to_contain_text("localhost cannot be used as a TLD.")
    enter("IP", "127.0.0.1")
    expect(errors).to_have_text("cannot contain loopback addresses")
    # Changing the type re-validates the address already typed.
    page.get_by_label("DNS", exact=True).check()
    expect(errors).to_have_text("IP addresses are not allowed, use an IP Resource instead")
    enter("CIDR", "0.0.0.0/0")
    # 0.0.0.0/0 also covers the loopback range: the Internet message comes first.
    expect(errors.first).to_have_text(
        "the Internet Resource is already created in your account. Define a Policy for it instead"
    )
    page.get_by_label("TCP", exact=True).check()
    page.locator("#resource_filters_tcp_ports").fill("8080-90")
    expect(_error_for(page, "resource[filters][tcp][ports]")).to_have_text(
        "lower value cannot be higher than upper value"
    )
    address.fill("10.0.0.0/24")
    expect(errors).to_have_count(0)

    # Saving without a site (and with the bad ports) keeps the page, with every error.
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(_error_for(page, "connections")).to_have_text("can't be blank")
    expect(_error_for(page, "resource[filters][tcp][ports]")).to_have_text(
        "lower value cannot be higher than upper value"
    )
    expect(page.locator("#resource_address")).to_have_value("10.0.0.0/24")
    assert not Resource.objects.filter(account=acme.account).exists()


def test_43_resource_from_site_page(live_server: Any, page: Page, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    group = GroupFactory(account=acme.account, name="Engineering")
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/resources/new?site_id={hq.pk}")
    expect(page.get_by_role("heading", name="Details")).to_be_visible()
    expect(page.locator("#resource-sites")).to_have_count(0)
    page.get_by_label("IP", exact=True).check()
    page.locator("#resource_address").fill("10.3.2.1")
    page.get_by_role("button", name="Save").click()

    resource = Resource.objects.get(account=acme.account)
    expect(page).to_have_url(
        re.compile(rf"/acme/policies/new\?resource_id={resource.pk}&site_id={hq.pk}$")
    )
    assert list(resource.connections.values_list("gateway_group_id", flat=True)) == [hq.pk]
    # The policy step belongs to the policies pages; grant the access directly, then the list
    # shows the group under "Authorized groups".
    policy_create(
        subject=subject_for(acme.admin, identity=acme.admin_identity),
        actor_group_id=group.pk,
        resource_id=resource.pk,
    )
    page.goto(f"{live_server.url}/acme/resources")
    row = page.locator(f"#resource-{resource.pk}")
    expect(row.get_by_role("link", name="Engineering")).to_be_visible()
    expect(row.get_by_role("link", name="HQ")).to_be_visible()


def test_44_edit_resource_type(live_server: Any, page: Page, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    resource = ResourceFactory(account=acme.account, name="GitLab", address="gitlab.company.com")
    ConnectionFactory(resource=resource, gateway_group=hq, account=acme.account)
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/resources/{resource.pk}")
    page.get_by_role("link", name="Edit Resource").click()
    expect(page).to_have_title("Edit GitLab · Firezone")
    expect(page.locator("#resource_name")).to_have_value("GitLab")

    page.get_by_label("IP", exact=True).check()
    expect(page.get_by_text("IP Stack", exact=True)).to_be_hidden()
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(_error_for(page, "resource[address]")).to_have_text("is not a valid IP address")

    page.locator("#resource_address").fill("10.3.2.1")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{live_server.url}/acme/resources")
    expect(page.get_by_text("Resource GitLab updated successfully.")).to_be_visible()
    resource.refresh_from_db()
    assert (resource.type, resource.address, resource.ip_stack) == ("ip", "10.3.2.1", None)


@pytest.mark.django_db(transaction=True)
def test_45_resources_list_reload_button(portal_server: Any, page: Page) -> None:
    acme = make_acme()
    SiteFactory(account=acme.account, name="HQ")
    portal_browser.sign_in_page(page, portal_server, acme.admin_identity)
    url = portal_browser.base_url(portal_server)
    page.goto(f"{url}/acme/resources")
    expect(page.get_by_text("No resources to display")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    reload = page.locator("#resources-reload-btn")
    expect(reload).to_be_hidden()

    other = page.context.new_page()
    other.goto(f"{url}/acme/resources/new")
    other.get_by_label("DNS", exact=True).check()
    other.locator("#resource_address").fill("wiki.company.com")
    other.get_by_label("HQ", exact=True).check()
    other.get_by_role("button", name="Save").click()
    expect(other).to_have_url(re.compile(r"/acme/policies/new\?resource_id="))
    other.close()

    expect(reload).to_be_visible()
    expect(reload).to_have_attribute("title", "The table data has changed.")
    expect(page.get_by_text("wiki.company.com")).to_have_count(0)
    reload.click()
    expect(page.get_by_role("link", name="wiki.company.com")).to_be_visible()
    expect(reload).to_be_hidden()
