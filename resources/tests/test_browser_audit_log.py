"""Issue 18 in a real chromium: an admin deletes a policy, then finds in Settings → Audit Log,
filtered by object type Policy, who deleted it, when, and "Deleted"."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from accounts.tests.portal import Acme, make_acme, session_cookie_for
from resources.tests.factories import PolicyFactory, ResourceFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def acme(live_server: Any) -> Acme:
    cache.clear()
    return make_acme()


def test_admin_finds_who_deleted_a_policy(live_server: Any, page: Page, acme: Acme) -> None:
    resource = ResourceFactory(account=acme.account, name="Database")
    policy = PolicyFactory(account=acme.account, resource=resource, description="DB access")
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])

    page.goto(f"{live_server.url}/acme/policies/{policy.pk}")
    page.get_by_role("button", name="Delete Policy").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{live_server.url}/acme/policies")

    expect(page.locator('a[href="/acme/settings/audit_log"]')).to_have_count(1)  # settings menu
    page.goto(f"{live_server.url}/acme/settings/audit_log")
    page.get_by_label("Object type").select_option(label="Policy")
    page.get_by_role("button", name="Filter").click()
    row = page.locator('tr[data-audit-type="Policy"][data-audit-action="Deleted"]')
    expect(row).to_have_count(1)
    expect(row.locator(".audit-who")).to_contain_text("Admin")
    expect(row.locator(".audit-what")).to_contain_text("Deleted Policy DB access")
    expect(row.locator(".audit-when time")).to_contain_text("UTC")
    # Only policies: the resource's creation is not in this view.
    expect(page.locator('tr[data-audit-type="Resource"]')).to_have_count(0)
