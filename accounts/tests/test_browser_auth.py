"""Sign-in, sign-out and the device hand-off in a real chromium (portal.md §8 scenarios 1-18,
23-26, 28 for email/userpass, 29-31)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Browser, Page, Route, expect

from accounts.auth import Context
from accounts.models import Account, Token
from accounts.services.tokens import authenticate
from accounts.services.tokens_admin import tokens_delete_for_actor
from accounts.tests.factories import ActorFactory, IdentityFactory, ProviderFactory, subject_for
from accounts.tests.portal import (
    ADMIN_EMAIL,
    PASSWORD,
    Acme,
    last_code,
    last_link,
    make_acme,
    session_cookie_for,
    userpass_identity,
)
from firezone.errors import Unauthorized
from tests.portal_browser import base_url, sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIGN_IN_REQUIRED = "You must sign in to access this page."
ADMIN_ONLY = "You must have the admin role in Firezone to sign in to the admin portal."


@pytest.fixture(autouse=True)
def _setup(settings: Any, live_server: Any) -> None:
    settings.SIGN_IN_EMAIL_MIN_SECONDS = 0
    settings.EXTERNAL_URL = live_server.url
    cache.clear()


@pytest.fixture
def acme() -> Acme:
    return make_acme(userpass=True)


def _request_code(page: Page, email: str = ADMIN_EMAIL) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Request sign in token").click()
    expect(page.get_by_text("Please check your email")).to_be_visible()


def _userpass(page: Page, username: str = "admin", password: str = PASSWORD) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _submit_code(page: Page, code: str) -> None:
    page.get_by_placeholder("Enter token from email").fill(code)
    page.get_by_role("button", name="Submit").click()


def test_1_sign_in_page_lists_methods(live_server: Any, page: Page, acme: Acme) -> None:
    ProviderFactory(account=acme.account, oidc=True, name="Vault")
    page.goto(f"{live_server.url}/acme")
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in with Vault")).to_be_visible()
    expect(page.get_by_text("Sign in with username and password")).to_be_visible()
    expect(page.get_by_text("Sign in with email")).to_be_visible()
    expect(page.get_by_text("Meant to sign in from a client instead?")).to_be_visible()
    expect(page).to_have_title("Sign In · Firezone")


def test_2_unknown_account_404(live_server: Any, page: Page) -> None:
    response = page.goto(f"{live_server.url}/no_such_account")
    assert response is not None and response.status == 404
    expect(page.get_by_text("Sorry, we couldn't find this page.")).to_be_visible()


def test_3_home_account_chooser(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/")
    page.get_by_label("Account ID or Slug").fill("ACME")
    page.get_by_role("button", name="Go to Sign In page").click()
    expect(page).to_have_url(f"{live_server.url}/acme")
    page.goto(f"{live_server.url}/")
    page.get_by_label("Account ID or Slug").fill("?1")
    page.get_by_role("button", name="Go to Sign In page").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_text("Account ID or Slug contains invalid characters")).to_be_visible()


def test_4_recently_used_accounts(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    page.locator("#user-menu-button").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/acme")
    page.goto(f"{live_server.url}/")
    expect(page.get_by_text("Sign in with a recently used account")).to_be_visible()
    button = page.get_by_role("link", name="Acme")
    expect(button).to_have_attribute("href", "/acme")


def test_5_unknown_email_anti_enumeration(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _request_code(page, "nobody@bar.com")
    expect(
        page.get_by_text("If nobody@bar.com is registered, a sign-in token has been sent.")
    ).to_be_visible()
    assert mail.outbox == []


def test_6_magic_link(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _request_code(page)
    (message,) = mail.outbox
    assert message.subject == "Firezone sign in token"
    page.goto(last_link())
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    expect(page.locator("#user-menu-button")).to_be_visible()


def test_7_code_typed_in_upper_case(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _request_code(page)
    _submit_code(page, last_code().upper())
    expect(page).to_have_url(f"{live_server.url}/acme/sites")


def test_8_wrong_code(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _request_code(page)
    code = last_code()
    _submit_code(page, "zzzzz" if code != "zzzzz" else "yyyyy")
    expect(page.get_by_text("The sign in token is invalid or expired.")).to_be_visible()
    expect(page.get_by_text("Please check your email")).to_be_visible()
    _submit_code(page, code)
    expect(
        page.get_by_text("The sign in token is missing or expired. Please try again.")
    ).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/acme")


def test_9_link_in_another_browser(
    live_server: Any, page: Page, browser: Browser, acme: Acme
) -> None:
    page.goto(f"{live_server.url}/acme")
    _request_code(page)
    other = browser.new_context()
    try:
        other_page = other.new_page()
        other_page.goto(last_link())
        expect(
            other_page.get_by_text("The sign in token is missing or expired. Please try again.")
        ).to_be_visible()
        expect(other_page.get_by_text("Sign in with email")).to_be_visible()
    finally:
        other.close()


def test_10_resend_email(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _request_code(page)
    page.get_by_role("button", name="Resend email").click()
    expect(page.get_by_text("Email was resent.")).to_be_visible()
    assert len(mail.outbox) == 2
    page.get_by_role("button", name="Resend email").click()
    expect(page.get_by_text("Email was resent.")).to_be_visible()
    page.get_by_role("button", name="Resend email").click()
    expect(page.get_by_text("Email was resent.")).to_be_visible()
    assert len(mail.outbox) == 3  # the 4th request within 5 minutes sends nothing
    # ...and the last code that was sent still works.
    _submit_code(page, last_code())
    expect(page).to_have_url(f"{live_server.url}/acme/sites")


def test_11_userpass_success(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    expect(page).to_have_title("Sites · Firezone")


def test_12_userpass_failure(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    for username, password in (("admin", "wrong-password!"), ("nobody", PASSWORD)):
        _userpass(page, username, password)
        expect(page.locator(".flash-error")).to_contain_text("Invalid username or password.")
        expect(page.get_by_label("Username")).to_have_value(username)


def test_13_disabled_or_deleted_actor(live_server: Any, page: Page, acme: Acme) -> None:
    acme.admin.disabled_at = timezone.now()
    acme.admin.save()
    page.goto(f"{live_server.url}/acme")
    _userpass(page)
    expect(page.locator(".flash-error")).to_contain_text("Invalid username or password.")
    acme.admin.delete()
    _userpass(page)
    expect(page.locator(".flash-error")).to_contain_text("Invalid username or password.")


def test_14_non_admin_blocked(live_server: Any, page: Page, acme: Acme) -> None:
    user = ActorFactory(account=acme.account, name="User")
    userpass_identity(acme, user, "user")
    page.goto(f"{live_server.url}/acme")
    _userpass(page, "user")
    expect(page).to_have_url(f"{live_server.url}/acme")
    expect(page.get_by_text(ADMIN_ONLY)).to_be_visible()


def _inject(page: Page, live_server: Any, identity: Any) -> None:
    page.goto(f"{live_server.url}/")
    user_agent = page.evaluate("navigator.userAgent")
    name, value = session_cookie_for(identity, user_agent)
    page.context.add_cookies([{"name": name, "value": value, "url": live_server.url}])


def test_15_non_admin_with_injected_session_gets_404(
    live_server: Any, page: Page, acme: Acme
) -> None:
    user = ActorFactory(account=acme.account, name="User")
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    _inject(page, live_server, identity)
    for path in ("/acme/actors", "/acme/sites"):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 404
        expect(page.get_by_text("Sorry, we couldn't find this page.")).to_be_visible()
        expect(page).to_have_url(f"{live_server.url}{path}")


def test_16_protected_page_redirects_with_return_path(
    live_server: Any, page: Page, acme: Acme
) -> None:
    page.goto(f"{live_server.url}/acme/policies")
    expect(page).to_have_url(f"{live_server.url}/acme?redirect_to=%2Facme%2Fpolicies")
    expect(page.get_by_text(SIGN_IN_REQUIRED)).to_be_visible()
    _request_code(page)
    _submit_code(page, last_code())
    expect(page).to_have_url(f"{live_server.url}/acme/policies")


def test_17_redirect_outside_account_ignored(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme?redirect_to=/other/sites")
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")


def test_18_already_signed_in(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    page.goto(f"{live_server.url}/acme")
    expect(page).to_have_url(f"{live_server.url}/acme/sites")


CALLBACK = re.compile(r"/mock-client/handle_client_sign_in_callback\?")


def _mock_client(live_server: Any, settings: Any) -> None:
    # The app's URL scheme handler, played by an address the browser can open (§3.10 step 5).
    settings.CLIENT_HANDLER = f"{live_server.url}/mock-client/"


def _deep_link(page: Page) -> dict[str, list[str]]:
    expect(page).to_have_url(CALLBACK)
    location = urlsplit(page.url)
    assert location.path == "/mock-client/handle_client_sign_in_callback"
    return parse_qs(location.query)


def test_23_client_sign_in_via_email(
    live_server: Any, page: Page, acme: Acme, settings: Any
) -> None:
    _mock_client(live_server, settings)
    page.goto(f"{live_server.url}/acme?as=client&nonce=N&state=S")
    expect(page.get_by_text("Meant to sign in from a client instead?")).to_have_count(0)
    _request_code(page)
    # Hold the automatic refresh (a 204 keeps the page) to look at the page, then continue.
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)
        route.fulfill(status=204)

    page.route("**/sign_in/client_redirect", hold)
    _submit_code(page, last_code())
    expect(page.get_by_text("Sign in successful.")).to_be_visible()
    expect(page.get_by_text("You may close this window.")).to_be_visible()
    refresh = page.locator('meta[http-equiv="refresh"]')
    expect(refresh).to_have_attribute("content", "0; url=/acme/sign_in/client_redirect")
    for _ in range(50):  # the refresh fires once the page has loaded
        if held:
            break
        page.wait_for_timeout(100)
    assert held
    page.unroute("**/sign_in/client_redirect")
    page.goto(f"{live_server.url}/acme/sign_in/client_redirect")
    query = _deep_link(page)
    assert sorted(query) == [
        "account_name",
        "account_slug",
        "actor_name",
        "fragment",
        "identity_provider_identifier",
        "state",
    ]
    assert query["account_name"] == ["Acme"] and query["account_slug"] == ["acme"]
    assert query["state"] == ["S"] and query["actor_name"] == ["Admin"]
    assert query["identity_provider_identifier"] == [ADMIN_EMAIL]
    fragment = query["fragment"][0]
    assert fragment.startswith(".")
    context = Context(type="client", user_agent="Firezone/1.0 (Linux)", remote_ip="100.64.0.9")
    assert authenticate("N" + fragment, context=context).actor.pk == acme.admin.pk
    with pytest.raises(Unauthorized):
        authenticate(fragment, context=context)


def test_24_client_sign_in_for_a_regular_user(
    live_server: Any, page: Page, acme: Acme, settings: Any
) -> None:
    _mock_client(live_server, settings)
    user = ActorFactory(account=acme.account, name="User")
    userpass_identity(acme, user, "user")
    page.goto(f"{live_server.url}/acme?as=client&nonce=N&state=S")
    _userpass(page, "user")
    assert _deep_link(page)["actor_name"] == ["User"]


def test_25_client_and_browser_sessions_coexist(
    live_server: Any, page: Page, acme: Acme, settings: Any
) -> None:
    _mock_client(live_server, settings)
    page.goto(f"{live_server.url}/acme")
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    page.goto(f"{live_server.url}/acme?as=client&nonce=N&state=S")
    _userpass(page)
    assert _deep_link(page)["state"] == ["S"]
    page.goto(f"{live_server.url}/acme/sites")
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    assert Token.objects.filter(account=acme.account, type="browser").count() == 1
    assert Token.objects.filter(account=acme.account, type="client").count() == 1


def test_26_client_auth_cookie_missing(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme/sign_in/client_redirect")
    expect(page).to_have_url(f"{live_server.url}/acme/sign_in/client_auth_error")
    expect(page.get_by_text("Sign in error!")).to_be_visible()
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()


def test_28_sign_out(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _request_code(page)
    _submit_code(page, last_code())
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    page.locator("#user-menu-button").click()
    expect(page.get_by_text(ADMIN_EMAIL)).to_be_visible()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/acme")
    expect(page.get_by_text("Sign in with username and password")).to_be_visible()
    page.goto(f"{live_server.url}/acme/sites")
    expect(page).to_have_url(re.compile(r"/acme\?redirect_to="))
    expect(page.get_by_text(SIGN_IN_REQUIRED)).to_be_visible()


def test_29_client_sign_out_deep_link(live_server: Any, page: Page, acme: Acme) -> None:
    page.goto(f"{live_server.url}/acme")
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    response = page.request.get(
        f"{live_server.url}/acme/sign_out?as=client&state=S", max_redirects=0
    )
    assert response.status == 302
    assert response.headers["location"] == "firezone://handle_client_sign_out_callback?state=S"


@pytest.mark.django_db(transaction=True)
def test_30_token_revocation_kicks_open_page(portal_server: Any, page: Page) -> None:
    """The `/live` socket (daphne) tells the open page at once; it reloads into sign-in."""
    acme = make_acme(userpass=True)
    sign_in_page(page, portal_server, acme.admin_identity)
    url = base_url(portal_server)
    page.goto(f"{url}/acme/sites")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    # Another admin revokes every token of this admin.
    other = ActorFactory(account=acme.account, admin=True, name="Other")
    identity = IdentityFactory(actor=other, account=acme.account, provider=acme.email_provider)
    tokens_delete_for_actor(subject=subject_for(other, identity=identity), actor=acme.admin)
    expect(page.get_by_text(SIGN_IN_REQUIRED)).to_be_visible(timeout=10_000)
    expect(page).to_have_url(f"{url}/acme?redirect_to=%2Facme%2Fsites")


def test_30_revoked_while_the_socket_is_down(live_server: Any, page: Page, acme: Acme) -> None:
    """Without the socket (WSGI live server: no `/live`) nothing polls; the next request of
    the page, an htmx one included, lands on sign-in."""
    page.goto(f"{live_server.url}/acme")
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    Token.objects.filter(actor=acme.admin, type="browser").delete()
    page.evaluate("htmx.ajax('GET', window.location.href, {swap: 'none'})")
    expect(page.get_by_text(SIGN_IN_REQUIRED)).to_be_visible(timeout=10_000)
    expect(page).to_have_url(f"{live_server.url}/acme?redirect_to=%2Facme%2Fsites")


def test_31_disabled_account(live_server: Any, page: Page, acme: Acme) -> None:
    Account.objects.filter(pk=acme.account.pk).update(disabled_at=timezone.now())
    disabled = "This account has been disabled. Please contact your administrator to re-enable it."
    page.goto(f"{live_server.url}/acme?as=client&nonce=N&state=S")
    expect(page.get_by_text(disabled)).to_be_visible()
    expect(page.locator("#email_form")).to_have_count(0)
    expect(page.locator("#userpass_form")).to_have_count(0)
    page.goto(f"{live_server.url}/acme")
    expect(page.get_by_text(disabled)).to_be_visible()
    expect(page.locator("#userpass_form")).to_be_visible()
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    expect(page.locator(".banner-error")).to_have_text(
        "This account has been disabled. Please contact support to re-activate it."
    )


def test_pages_fit_a_phone(live_server: Any, page: Page, acme: Acme) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{live_server.url}/acme")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    _userpass(page)
    expect(page).to_have_url(f"{live_server.url}/acme/sites")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.locator("#drawer-navigation")).not_to_be_in_viewport()
    page.locator("label.burger").click()
    expect(page.locator("#drawer-navigation")).to_be_in_viewport()
