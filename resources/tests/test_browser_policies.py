"""Policy pages in a real chromium (portal.md §8 scenarios 46-49), plus the live behaviour of the
list (stale → "Reload") and of the policy page (refreshed in place, §9 item 10)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from django.core.cache import cache
from django.db import connection
from playwright.sync_api import Page, expect

from accounts.tests.factories import GroupFactory, everyone_group, subject_for
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from resources.models import Policy
from resources.services.policies import policy_create, policy_disable
from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory, SiteFactory
from tests.portal_browser import base_url, sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

T = TypeVar("T")


def _elsewhere(fn: Callable[..., T], **kwargs: Any) -> T:
    """Run a service outside Playwright's event loop thread (it publishes change events
    synchronously), as another session of the portal would."""

    def run() -> T:
        try:
            return fn(**kwargs)
        finally:
            connection.close()  # this thread's own connection, or the test DB stays in use

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def acme(live_server: Any) -> Acme:
    cache.clear()
    return make_acme()


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def _gitlab(acme: Acme) -> Any:
    site = SiteFactory(account=acme.account, name="HQ")
    resource = ResourceFactory(account=acme.account, name="GitLab", address="gitlab.company.com")
    ConnectionFactory(resource=resource, gateway_group=site, account=acme.account)
    return resource


def _fill_conditions(page: Page) -> None:
    page.get_by_text("Client location", exact=True).click()
    page.locator("#policy_conditions_remote_ip_location_region_operator").select_option("is_in")
    page.locator("#policy_conditions_remote_ip_location_region_values_0").select_option(
        label="United States"
    )
    # A second, empty country select appears after the filled one ("or").
    expect(page.locator("#policy_conditions_remote_ip_location_region_values_1")).to_be_visible()
    page.get_by_text("Current time", exact=True).click()
    page.locator("#policy_conditions_current_utc_datetime_timezone").select_option("UTC")
    page.get_by_label("Monday").fill("9:00-17:00")


SENTENCE = "This policy can be used from United States on Mondays (09:00:00 - 17:00:00 UTC)"


def test_46_create_policy_with_conditions(live_server: Any, page: Page, acme: Acme) -> None:
    everyone_group(acme.account)
    GroupFactory(account=acme.account, name="Engineering")
    resource = _gitlab(acme)
    _sign_in(page, live_server, acme)

    page.goto(f"{live_server.url}/acme/policies")
    page.get_by_role("link", name="Add Policy").click()
    expect(page).to_have_title("New Policy · Firezone")
    conditions = page.locator("#policy-conditions")
    expect(conditions).to_be_hidden()
    # The picker's search narrows the options.
    page.locator("#search_query-policy_actor_group_id").fill("engin")
    expect(page.locator("#policy_actor_group_id option", has_text="Everyone")).to_have_count(0)
    page.locator("#policy_actor_group_id").select_option(label="Engineering")
    page.locator("#policy_resource_id").select_option(label="GitLab (HQ)")
    expect(conditions).to_be_visible()
    expect(page.get_by_text("All conditions specified below must be met")).to_be_visible()
    _fill_conditions(page)
    page.get_by_role("button", name="Create Policy").click()

    expect(page).to_have_url(f"{live_server.url}/acme/policies")
    expect(page.get_by_text("Policy created successfully.")).to_be_visible()
    policy = Policy.objects.get(account=acme.account)
    assert policy.resource_id == resource.pk
    page.goto(f"{live_server.url}/acme/policies/{policy.pk}")
    expect(page.locator("#policy-conditions")).to_have_text(SENTENCE)

    # With the resource preset, the picker is locked and the policy lands on the resource page.
    other = ResourceFactory(account=acme.account, name="Wiki")
    page.goto(f"{live_server.url}/acme/policies/new?resource_id={other.pk}")
    expect(page.locator("#policy_resource_id")).to_be_disabled()
    expect(conditions).to_be_visible()
    page.locator("#policy_actor_group_id").select_option(label="Engineering")
    _fill_conditions(page)
    page.get_by_role("button", name="Create Policy").click()
    expect(page).to_have_url(f"{live_server.url}/acme/resources/{other.pk}")
    preset = Policy.objects.get(account=acme.account, resource=other)
    page.goto(f"{live_server.url}/acme/policies/{preset.pk}")
    expect(page.locator("#policy-conditions")).to_have_text(SENTENCE)


def test_47_duplicate_policy(live_server: Any, page: Page, acme: Acme) -> None:
    GroupFactory(account=acme.account, name="Engineering")
    _gitlab(acme)
    _sign_in(page, live_server, acme)
    for _ in range(2):
        page.goto(f"{live_server.url}/acme/policies/new")
        page.locator("#policy_actor_group_id").select_option(label="Engineering")
        page.locator("#policy_resource_id").select_option(label="GitLab (HQ)")
        page.get_by_role("button", name="Create Policy").click()
    base = page.locator('[data-validation-error-for="policy[base]"]')
    expect(base).to_have_text("Policy for the selected Group and Resource already exists")
    expect(page).to_have_url(f"{live_server.url}/acme/policies/new")
    assert Policy.objects.filter(account=acme.account).count() == 1


def test_48_internet_resource_hides_time_condition(
    live_server: Any, page: Page, acme: Acme
) -> None:
    internet = ResourceFactory(account=acme.account, internet=True)
    _gitlab(acme)
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/policies/new?resource_id={internet.pk}")
    expect(page.locator("#policy_resource_id")).to_have_text("Internet")
    for name in ("Client location", "IP address", "Identity provider", "Client verification"):
        expect(page.get_by_text(name, exact=True)).to_be_visible()
    expect(page.get_by_text("Current time", exact=True)).to_be_hidden()

    # Choosing resources in the picker toggles it as well.
    page.goto(f"{live_server.url}/acme/policies/new")
    page.locator("#policy_resource_id").select_option(label="GitLab (HQ)")
    expect(page.get_by_text("Current time", exact=True)).to_be_visible()
    page.locator("#policy_resource_id").select_option(label="Internet")
    expect(page.get_by_text("Current time", exact=True)).to_be_hidden()
    expect(page.get_by_text("Client location", exact=True)).to_be_visible()


def test_49_disable_enable_delete_policy(live_server: Any, page: Page, acme: Acme) -> None:
    policy = PolicyFactory(
        account=acme.account, actor_group__name="Engineering", resource__name="GitLab"
    )
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/policies/{policy.pk}")
    title = page.locator("#policy-title")
    expect(title).to_have_text("Engineering → GitLab")

    page.get_by_role("button", name="Disable").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Confirm disabling the Policy")).to_be_visible()
    dialog.get_by_role("button", name="Disable").click()
    expect(title).to_have_text("Engineering → GitLab (disabled)")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()

    page.get_by_role("button", name="Enable").click()
    page.get_by_role("dialog").get_by_role("button", name="Enable").click()
    expect(title).to_have_text("Engineering → GitLab")
    expect(page.get_by_role("button", name="Disable")).to_be_visible()

    page.get_by_role("button", name="Delete Policy").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Confirm deletion of Policy")).to_be_visible()
    dialog.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{live_server.url}/acme/policies")
    expect(page.get_by_text("No policies to display.")).to_be_visible()


def test_edit_policy(live_server: Any, page: Page, acme: Acme) -> None:
    policy = PolicyFactory(account=acme.account, resource=_gitlab(acme), description="Old")
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/policies/{policy.pk}")
    page.get_by_role("link", name="Edit Policy").click()
    expect(page).to_have_title(f"Edit Policy {policy.pk} · Firezone")
    expect(page.locator("#policy-conditions")).to_be_visible()
    page.get_by_label("Description").fill("New reason")
    page.get_by_text("Client verification", exact=True).click()
    page.get_by_label("Require client verification").check()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{live_server.url}/acme/policies/{policy.pk}")
    expect(page.locator("#policy-conditions")).to_have_text(
        "This policy can be used by clients that are verified"
    )
    expect(page.locator("pre.policy-description")).to_have_text("New reason")


@pytest.mark.django_db(transaction=True)
def test_policies_list_reload_button_and_live_detail(
    portal_server: Any,
    page: Page,
) -> None:
    acme = make_acme()
    group = GroupFactory(account=acme.account, name="Engineering")
    resource = ResourceFactory(account=acme.account, name="GitLab")
    subject = subject_for(acme.admin, identity=acme.admin_identity)
    sign_in_page(page, portal_server, acme.admin_identity)
    url = base_url(portal_server)
    page.goto(f"{url}/acme/policies")
    expect(page.get_by_text("No policies to display.")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    reload = page.locator("#policies-reload-btn")
    expect(reload).to_be_hidden()

    policy = _elsewhere(
        policy_create, subject=subject, actor_group_id=group.pk, resource_id=resource.pk
    )
    expect(reload).to_be_visible()
    expect(page.locator(f"#policies-{policy.pk}")).to_have_count(0)
    reload.click()
    expect(page.locator(f"#policies-{policy.pk}")).to_be_visible()
    expect(reload).to_be_hidden()

    # The policy page follows changes in place (§9 item 10).
    page.goto(f"{url}/acme/policies/{policy.pk}")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    title = page.locator("#policy-title")
    expect(title).to_have_text("Engineering → GitLab")
    _elsewhere(policy_disable, subject=subject, policy=policy)
    expect(title).to_have_text(re.compile(r"\(disabled\)$"))
