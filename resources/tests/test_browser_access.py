""" "Check access" in a real chromium (issue 18 tests): an admin sees why a user is denied outside a
time window, from the user's page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from accounts.models import Actor
from accounts.tests.factories import ActorFactory, GroupFactory, MembershipFactory
from accounts.tests.portal import Acme, make_acme, session_cookie_for
from resources.tests.factories import (
    ClientFactory,
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORK_HOURS = [f"{day}/09:00-17:00/Europe/Berlin" for day in "MTWRF"]


@pytest.fixture
def acme(live_server: Any) -> Acme:
    cache.clear()
    return make_acme()


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def test_admin_sees_why_a_user_is_denied_outside_a_time_window(
    live_server: Any, page: Page, acme: Acme
) -> None:
    account = acme.account
    jane = ActorFactory(account=account, name="Jane", type=Actor.Type.ACCOUNT_USER)
    group = GroupFactory(account=account, name="Engineering")
    MembershipFactory(group=group, actor=jane, account=account)
    ClientFactory(actor=jane, account=account, name="jane-laptop")
    site = SiteFactory(account=account, name="HQ")
    GatewayFactory(group=site, account=account, name="gw-hq")
    resource = ResourceFactory(account=account, name="GitLab")
    ConnectionFactory(resource=resource, gateway_group=site, account=account)
    # The resource's only policy: Engineering, Mon-Fri 09:00-17:00 Berlin time.
    PolicyFactory(
        account=account,
        actor_group=group,
        resource=resource,
        conditions=[
            {
                "property": "current_utc_datetime",
                "operator": "is_in_day_of_week_time_ranges",
                "values": WORK_HOURS,
            }
        ],
    )
    _sign_in(page, live_server, acme)

    page.goto(f"{live_server.url}/acme/actors/{jane.pk}")
    section = page.locator("#actor-access")
    expect(section.get_by_role("heading", name="Check access")).to_be_visible()
    section.get_by_label("Resource").select_option(label="GitLab")
    section.locator("#access-context > summary").click()  # the optional inputs
    section.get_by_label("Time", exact=True).fill("2026-12-05T20:30")  # a Saturday evening
    section.get_by_label("Time zone").select_option("Europe/Berlin")
    section.get_by_role("button", name="Check access").click()

    expect(page).to_have_url(
        re.compile(rf"/acme/actors/{jane.pk}/access\?.*resource_id={resource.pk}")
    )
    expect(page.locator("#access-verdict")).to_contain_text("Denied")
    expect(page.locator("#access-reason")).to_have_text(
        "outside the time window Mon–Fri 09:00–17:00 Europe/Berlin"
    )
    row = page.locator("#access-policies tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Engineering")
    expect(row).to_contain_text("Member: added manually")
    expect(row.locator(".access-condition")).to_contain_text("Failed:")
    expect(row.locator(".access-condition")).to_contain_text(
        "evaluated against Sat 20:30 Europe/Berlin"
    )
    # The answer is a link: reloading it asks the same question.
    page.reload()
    expect(page.locator("#access-reason")).to_contain_text("outside the time window")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")
