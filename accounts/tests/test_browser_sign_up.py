"""Sign-up in a real browser (portal.md §8 scenarios 32-33, then the first sign-in)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from accounts.models import Account, ActorGroup, AuthProvider
from gateways.models import Site
from resources.models import Resource

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _email() -> str:
    return f"jdoe-{uuid.uuid4().hex[:10]}@foobar.example"


def _fill(page: Page, *, email: str, company: str = "FooBar", name: str = "John Doe") -> None:
    page.get_by_label("Work Email").fill(email)
    page.get_by_label("Company Name").fill(company)
    page.get_by_label("Your Name").fill(name)


def test_sign_up_then_sign_in(live_server: Any, page: Page, settings: Any) -> None:
    """Scenario 32, then "Sign In" → code from the email → the account's Sites page."""
    settings.EXTERNAL_URL = live_server.url
    email = _email()
    page.goto(f"{live_server.url}/sign_up")
    expect(page.get_by_text("Sign up for a new account")).to_be_visible()
    _fill(page, email=email)
    page.get_by_role("button", name="Create Account").click()

    expect(page.get_by_text("Your account has been created!")).to_be_visible()
    expect(page.get_by_text("Please check your email for sign in instructions.")).to_be_visible()
    account = Account.objects.get(name="FooBar")
    sign_in_url = f"{live_server.url}/{account.slug}"
    expect(page.locator("#sign-up-account-name")).to_have_text("FooBar")
    expect(page.locator("#sign-up-account-slug")).to_have_text(account.slug)
    expect(page.get_by_role("link", name=sign_in_url)).to_have_attribute("href", sign_in_url)

    (welcome,) = mail.outbox
    assert welcome.subject == "Welcome to Firezone" and welcome.to == [email]
    assert sign_in_url in welcome.body

    assert list(ActorGroup.objects.filter(account=account).values_list("name", flat=True)) == [
        "Everyone"
    ]
    assert AuthProvider.objects.get(account=account).name == "Email"
    assert set(Site.objects.filter(account=account).values_list("name", flat=True)) == {
        "Default Site",
        "Internet",
    }
    assert Resource.objects.get(account=account).name == "Internet"

    # The "Sign In" button requests an email code for the new admin and opens the code page.
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_text("Please check your email")).to_be_visible(timeout=15_000)
    code_email = mail.outbox[-1]
    assert code_email is not welcome and code_email.to == [email]
    match = re.search(r"Sign In form\s+(\w{5})\b", str(code_email.body)) or re.search(
        r"secret=(\w{5})", str(code_email.body)
    )
    assert match, str(code_email.body)
    page.get_by_placeholder("Enter token from email").fill(match.group(1))
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(f"{live_server.url}/{account.slug}/sites")


def test_sign_up_validation(live_server: Any, page: Page) -> None:
    """Scenario 33: live validation of each field."""
    page.goto(f"{live_server.url}/sign_up")
    email = page.get_by_label("Work Email")
    email.fill("jdoe")
    expect(page.locator("#registration_email-errors")).to_have_text("is an invalid email address")
    email.fill("")
    expect(page.locator("#registration_email-errors")).to_have_text("can't be blank")
    email.fill(_email())
    expect(page.locator("#registration_email-errors")).to_have_text("")

    company = page.get_by_label("Company Name")
    company.fill("ab")
    expect(page.locator("#registration_account_name-errors")).to_have_text(
        "should be at least 3 character(s)"
    )
    company.fill("")
    expect(page.locator("#registration_account_name-errors")).to_have_text("can't be blank")

    name = page.get_by_label("Your Name")
    name.fill("John")
    name.fill("")
    expect(page.locator("#registration_actor_name-errors")).to_have_text("can't be blank")
    assert not Account.objects.exists()


def test_sign_up_disabled(live_server: Any, page: Page, settings: Any) -> None:
    """Scenario 33: with sign-up switched off the form is gone."""
    settings.FEATURE_SIGN_UP = False
    page.goto(f"{live_server.url}/try")
    expect(page.get_by_text("Sign-ups are currently disabled.")).to_be_visible()
    expect(page.get_by_role("link", name="sales@firezone.dev")).to_have_attribute(
        "href", "mailto:sales@firezone.dev?subject=Firezone%20Sign%20Up%20Request"
    )
    expect(page.get_by_role("button", name="Create Account")).to_have_count(0)


def test_sign_up_domain_allow_list(live_server: Any, page: Page, settings: Any) -> None:
    """Scenario 33: an allow-list without the email's domain refuses it, live and on submit."""
    settings.SIGN_UP_EMAIL_DOMAINS = ["allowed.example"]
    page.goto(f"{live_server.url}/sign_up")
    _fill(page, email="jdoe@foobar.example")
    errors = page.locator("#registration_email-errors")
    expect(errors).to_have_text("this email domain is not allowed at this time")
    # Wait for the submit's swap: typing into the card while it is replaced loses the input.
    with page.expect_response(lambda r: r.request.method == "POST" and "/sign_up" in r.url):
        page.get_by_role("button", name="Create Account").click()
    expect(errors).to_have_text("this email domain is not allowed at this time")
    assert not Account.objects.exists()

    # A fresh form: live validation of the previous value may still be swapping in.
    page.goto(f"{live_server.url}/sign_up")
    email = f"{uuid.uuid4().hex[:8]}@allowed.example"
    _fill(page, email=email)
    expect(page.get_by_label("Work Email")).to_have_value(email)
    page.get_by_role("button", name="Create Account").click()
    expect(page.get_by_text("Your account has been created!")).to_be_visible()
