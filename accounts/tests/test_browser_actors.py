"""Actor pages in a real chromium (portal.md §8 scenarios 50-56), plus the live Clients table of
the actor page (presence topic `actor_clients:<actor>`, §7)."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Actor, Token
from accounts.services.tokens import token_create
from accounts.tests.factories import ActorFactory, GroupFactory, IdentityFactory
from accounts.tests.portal import Acme, make_acme, session_cookie_for
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


def _flash(page: Page, text: str) -> None:
    expect(page.locator(".flash-group")).to_contain_text(text)


def _confirm(page: Page, dialog_id: str, button: str) -> None:
    page.locator(f"#{dialog_id}").get_by_role("button", name=button, exact=True).click()


def _jane(acme: Acme) -> Actor:
    jane = ActorFactory(account=acme.account, name="Jane")
    IdentityFactory(
        actor=jane,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier="jane@acme.test",
    )
    return jane


def _sa_token(actor: Actor, name: str) -> Token:
    # Directly: services publish change events, which cannot run in Playwright's loop thread.
    return Token.objects.create(
        type="client",
        name=name,
        actor=actor,
        account=actor.account,
        secret_salt="salt",
        secret_hash="hash",
        created_by="system",
        expires_at=timezone.now() + timedelta(days=30),
    )


def _add_user_steps(page: Page, live_server: Any, name: str, role: str) -> None:
    page.goto(f"{live_server.url}/acme/actors")
    page.get_by_role("link", name="Add Actor").click()
    expect(page).to_have_title("New Actor · Firezone")
    page.locator("#next-users").check()
    page.get_by_role("button", name="Next: Actor Details").click()
    expect(page).to_have_title("New User · Firezone")
    page.get_by_label("Full Name").fill(name)
    page.get_by_label("Role").select_option(label=role)
    page.get_by_role("button", name="Next: Add an Identity").click()


def test_50_create_user_wizard(live_server: Any, page: Page, acme: Acme) -> None:
    eng = GroupFactory(account=acme.account, name="Eng")
    _sign_in(page, live_server, acme)
    _add_user_steps(page, live_server, "Jane", "Admin")

    expect(page).to_have_title("New User Identity · Firezone")
    jane = Actor.objects.get(account=acme.account, name="Jane")
    assert jane.type == "account_admin_user"
    expect(page).to_have_url(re.compile(r"/new_identity\?next_step=edit_groups$"))
    expect(page.get_by_label("Identity Provider")).to_have_value(str(acme.email_provider.pk))
    page.get_by_label("Email", exact=True).fill("jane@acme.test")
    page.get_by_label("Email Confirmation").fill("jane@acme.test")
    page.get_by_role("button", name="Next: Select Group Memberships").click()

    expect(page).to_have_url(f"{live_server.url}/acme/actors/{jane.pk}/edit_groups")
    expect(page.get_by_role("heading", name="Group Memberships: Jane")).to_be_visible()
    page.locator(f"#toggle-group-{eng.pk}").click()
    expect(page.locator(f"#groups-{eng.pk}")).to_have_class("pending-add")
    page.get_by_role("button", name="Save").click()
    dialog = page.locator("#save-groups-dialog")
    expect(dialog).to_contain_text("Confirm changes to Actor Groups")
    expect(dialog).to_contain_text("Are you sure you want to add Eng?")
    _confirm(page, "save-groups-dialog", "Save")

    expect(page).to_have_url(f"{live_server.url}/acme/actors/{jane.pk}")
    expect(page.locator("#actor-title")).to_contain_text("User: Jane")
    expect(page.locator("#identities")).to_contain_text("jane@acme.test")
    expect(page.locator("#groups")).to_contain_text("Eng")
    (welcome,) = mail.outbox
    assert welcome.subject == "Welcome to Firezone" and welcome.to == ["jane@acme.test"]
    assert "Admin invited you to the following Firezone Account: Acme" in welcome.body


def test_51_identity_email_mismatch(live_server: Any, page: Page, acme: Acme) -> None:
    jane = ActorFactory(account=acme.account, name="Jane")
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/actors/users/{jane.pk}/new_identity?next_step=edit_groups")
    page.get_by_label("Email", exact=True).fill("jane@acme.test")
    page.get_by_label("Email Confirmation").fill("jane@acme.example")
    page.get_by_role("button", name="Next: Select Group Memberships").click()
    expect(page.get_by_text("email does not match")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/new_identity\?next_step=edit_groups$"))
    assert not jane.identities.exists()


def test_52_seat_limit(live_server: Any, page: Page, acme: Acme) -> None:
    acme.account.limits = {"users_count": 1}
    acme.account.save()
    _sign_in(page, live_server, acme)
    _add_user_steps(page, live_server, "Jane", "User")
    _flash(page, "You have reached the maximum number of seats allowed by your subscription plan.")
    expect(page).to_have_title("New User · Firezone")
    assert not Actor.objects.filter(name="Jane").exists()


def test_53_service_account_token(live_server: Any, page: Page, acme: Acme) -> None:
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/actors/new")
    page.locator("#next-service_accounts").check()
    page.get_by_role("button", name="Next: Actor Details").click()
    expect(page).to_have_title("New Service Account · Firezone")
    page.get_by_label("Full Name").fill("Backend")
    page.get_by_role("button", name="Next: Create Token").click()

    expect(page).to_have_title("New Service Account Token · Firezone")
    default = (timezone.now().astimezone(UTC).date() + timedelta(days=365)).isoformat()
    expect(page.get_by_label("Expires At")).to_have_value(default)
    page.get_by_label("Name").fill("ci-token")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your Service Account token")).to_be_visible()
    expect(page.get_by_text("It won't be shown again.")).to_be_visible()
    expect(page.locator("#token code")).to_have_text(re.compile(r"^\.\S+$"))

    page.get_by_role("link", name="Back to Service Account").click()
    sa = Actor.objects.get(account=acme.account, name="Backend")
    expect(page).to_have_url(f"{live_server.url}/acme/actors/{sa.pk}")
    expect(page.locator("#tokens")).to_contain_text("ci-token")

    page.get_by_role("link", name="Create Token").click()
    page.get_by_label("Name").fill("old")
    yesterday = timezone.now().astimezone(UTC).date() - timedelta(days=1)
    page.get_by_label("Expires At").fill(yesterday.isoformat())
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(re.compile(r"must be greater than \d{4}-"))).to_be_visible()
    assert list(Token.objects.filter(actor=sa).values_list("name", flat=True)) == ["ci-token"]


def test_54_last_admin_protections(live_server: Any, page: Page, acme: Acme) -> None:
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/actors/{acme.admin.pk}")
    expect(page.locator("#actor-title")).to_contain_text("(you)")

    page.get_by_role("button", name="Disable User").click()
    _confirm(page, "disable-actor-dialog", "Disable")
    _flash(page, "You can't disable the last admin of an account.")

    page.get_by_role("button", name="Delete User").click()
    _confirm(page, "delete-actor-dialog", "Delete")
    _flash(page, "You can't delete the last admin of an account.")

    page.get_by_role("link", name="Edit User").click()
    expect(page).to_have_title("Edit Admin · Firezone")
    page.get_by_label("Role").select_option(label="User")
    page.get_by_role("button", name="Save").click()
    _flash(page, "You may not demote the last admin.")

    acme.admin.refresh_from_db()
    assert acme.admin.is_admin and acme.admin.is_active


def test_55_revoke_a_token(live_server: Any, page: Page, acme: Acme) -> None:
    sa = ActorFactory(account=acme.account, name="Backend", service_account=True)
    keep = _sa_token(sa, "keep")
    revoke = _sa_token(sa, "revoke-me")
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/actors/{sa.pk}")
    row = page.locator(f"#tokens-{revoke.pk}")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(f"#revoke-token-{revoke.pk}-dialog")).to_contain_text(
        "Confirm token revocation"
    )
    _confirm(page, f"revoke-token-{revoke.pk}-dialog", "Revoke")
    _flash(page, "Token was revoked.")
    expect(page.locator(f"#tokens-{revoke.pk}")).to_have_count(0)
    expect(page.locator(f"#tokens-{keep.pk}")).to_be_visible()


def test_56_welcome_email_rate_limit(live_server: Any, page: Page, acme: Acme) -> None:
    jane = _jane(acme)
    _sign_in(page, live_server, acme)
    page.goto(f"{live_server.url}/acme/actors/{jane.pk}")
    for _ in range(3):
        page.get_by_role("button", name="Send Welcome Email").click()
        _flash(page, "Welcome email sent to jane@acme.test")
    page.get_by_role("button", name="Send Welcome Email").click()
    _flash(page, "You sent too many welcome emails to this address. Please try again later.")
    assert len(mail.outbox) == 3


@pytest.mark.django_db(transaction=True)
def test_actor_clients_table_follows_presence(
    portal_server: Any,
    page: Page,
) -> None:
    acme = make_acme()
    sa = ActorFactory(account=acme.account, name="Backend", service_account=True)
    issued = token_create(
        type="client",
        account=acme.account,
        actor=sa,
        name="ci",
        expires_at=timezone.now() + timedelta(days=1),
    )
    sign_in_page(page, portal_server, acme.admin_identity)
    page.goto(f"{base_url(portal_server)}/acme/actors/{sa.pk}")
    expect(page.get_by_text("Actor has not signed in from any Client.")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "connected")

    with client_socket(portal_server, issued.encoded, name="build-box"):
        row = page.locator("#clients tr", has_text="build-box")
        expect(row).to_contain_text("Online")
    expect(row).to_contain_text("Offline")
