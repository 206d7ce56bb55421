"""Group pages in a real chromium (portal.md §8 scenario 57)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from accounts.models import ActorGroup
from accounts.tests.factories import ActorFactory, IdentityFactory, everyone_group
from accounts.tests.portal import Acme, make_acme, session_cookie_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def acme(live_server: Any, settings: Any) -> Acme:
    settings.EXTERNAL_URL = live_server.url
    cache.clear()
    return make_acme()


def _sign_in(page: Page, live_server: Any, acme: Acme) -> None:
    name, value = session_cookie_for(acme.admin_identity, page.evaluate("navigator.userAgent"))
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def test_57_groups_create_and_members(live_server: Any, page: Page, acme: Acme) -> None:
    everyone = everyone_group(acme.account)
    jane = ActorFactory(account=acme.account, name="Jane")
    IdentityFactory(
        actor=jane,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier="jane@acme.test",
    )
    bob = ActorFactory(account=acme.account, name="Bob")
    _sign_in(page, live_server, acme)

    page.goto(f"{live_server.url}/acme/groups")
    expect(page).to_have_title("Groups · Firezone")
    page.get_by_role("link", name="Add Group").click()
    expect(page).to_have_title("New Group · Firezone")
    page.get_by_label("Group Name").fill("Eng")
    page.get_by_role("button", name="Next: Select Members").click()

    expect(page).to_have_title("Edit Actors in Eng · Firezone")
    eng = ActorGroup.objects.get(account=acme.account, name="Eng")
    expect(page).to_have_url(f"{live_server.url}/acme/groups/{eng.pk}/edit_actors")
    expect(page.locator("#save-actors")).to_be_disabled()
    page.locator(f"#toggle-actor-{jane.pk}").click()
    expect(page.locator(f"#actor-{jane.pk}")).to_have_class("pending-add")
    page.locator(f"#toggle-actor-{bob.pk}").click()
    expect(page.locator(f"#actor-{bob.pk}")).to_have_class("pending-add")
    page.locator("#save-actors").click()
    dialog = page.locator("#save-actors-dialog")
    expect(dialog).to_contain_text("Confirm changes to Group Actors")
    expect(dialog).to_contain_text(
        "You're about to apply the following membership changes for the Eng group:"
    )
    expect(dialog).to_contain_text("+ Jane")
    expect(dialog).to_contain_text("+ Bob")
    dialog.get_by_role("button", name="Confirm").click()

    expect(page).to_have_url(f"{live_server.url}/acme/groups/{eng.pk}")
    expect(page.locator("#group-title")).to_contain_text("Group: Eng")
    actors = page.locator("#actors")
    expect(actors).to_contain_text("Jane")
    expect(actors).to_contain_text("jane@acme.test")
    expect(actors).to_contain_text("Bob")

    page.goto(f"{live_server.url}/acme/groups/{everyone.pk}")
    expect(
        page.get_by_text("This group is managed by Firezone and cannot be edited.")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Edit Group")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete Group")).to_have_count(0)
    response = page.goto(f"{live_server.url}/acme/groups/{everyone.pk}/edit")
    assert response is not None and response.status == 404
    expect(page.get_by_text("Sorry, we couldn't find this page.")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/acme/groups/{everyone.pk}/edit$"))
