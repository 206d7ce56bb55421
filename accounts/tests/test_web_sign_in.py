"""Portal pages around sign-in: home, the account sign-in page, sessions and access levels,
sign-out, the client hand-off pages, error pages, security headers and the dev pages
(portal.md §1.1, §1.5, §1.6, §2.1, §3.2-§3.5, §3.9-§3.13)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone

from accounts.models import Account, Token
from accounts.sign_in import logout
from accounts.sign_in.flow import RECENT_ACCOUNTS_COOKIE, set_recent_account_ids
from accounts.tests.factories import AccountFactory, ActorFactory, IdentityFactory, ProviderFactory
from accounts.tests.portal import ADMIN_EMAIL, UA, inject_session, make_acme
from firezone.web.session import MAX_SESSIONS, SESSIONS_KEY

pytestmark = pytest.mark.django_db

SIGN_IN_REQUIRED = "You must sign in to access this page."


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.SIGN_IN_EMAIL_MIN_SECONDS = 0
    cache.clear()


@pytest.fixture
def acme():
    return make_acme(userpass=True)


@pytest.fixture
def client():
    return Client(HTTP_USER_AGENT=UA)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _recent(client, ids: list[str]) -> None:
    from django.http import HttpResponse

    response = HttpResponse()
    set_recent_account_ids(response, ids)
    client.cookies[RECENT_ACCOUNTS_COOKIE] = response.cookies[RECENT_ACCOUNTS_COOKIE].value


# --- home ---------------------------------------------------------------------------------------


def test_home_form(client) -> None:
    response = client.get("/")
    text = response.content.decode()
    assert response.status_code == 200
    assert "Welcome to Firezone." in text
    assert "Sign in using your account ID or slug" in text
    assert "Account ID or Slug" in text and "Go to Sign In page" in text
    assert "Enter account ID from the welcome email" in text
    assert "Sign in with a recently used account" not in text
    assert "Sign up here." in text
    assert "Sign up here." not in client.get("/?as=client").content.decode()


def test_home_redirects_lower_cased_with_params(client) -> None:
    response = client.post("/?as=client&nonce=n", {"account_id_or_slug": " ACME "})
    assert response["Location"] == "/acme?as=client&nonce=n"
    response = client.post("/", {"account_id_or_slug": "?1", "state": "s"})
    assert response["Location"] == "/?state=s"
    assert _messages(client.get(response["Location"])) == [
        "Account ID or Slug contains invalid characters"
    ]
    assert client.post("/", {"account_id_or_slug": "admin"})["Location"] == "/"


def test_home_lists_recent_accounts_and_prunes_missing(client, acme) -> None:
    gone = str(uuid.uuid4())
    _recent(client, [str(acme.account.pk), gone])
    response = client.get("/?as=client")
    text = response.content.decode()
    assert "Sign in with a recently used account" in text
    assert 'href="/acme?as=client"' in text and ">Acme<" in text
    assert "Signed in" not in text
    assert RECENT_ACCOUNTS_COOKIE in response.cookies  # pruned
    inject_session(client, acme.admin_identity)
    assert "Signed in" in client.get("/").content.decode()  # §9 item 1 fixed


def test_sign_in_sets_recent_accounts_cookie(client, acme) -> None:
    other = AccountFactory()
    _recent(client, [str(other.pk)])
    response = client.post(
        f"/acme/sign_in/providers/{acme.userpass_provider.pk}/verify_credentials",
        {"userpass[provider_identifier]": "admin", "userpass[secret]": "Firezone1234"},
    )
    cookie = response.cookies[RECENT_ACCOUNTS_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    from accounts.sign_in.flow import recent_account_ids

    request = HttpRequest()
    request.COOKIES = {RECENT_ACCOUNTS_COOKIE: cookie.value}
    assert recent_account_ids(request) == [str(acme.account.pk), str(other.pk)]


# --- sign-in page -------------------------------------------------------------------------------


def test_sign_in_page_lists_methods(client, acme) -> None:
    ProviderFactory(account=acme.account, oidc=True, name="Vault")
    response = client.get("/acme")
    text = response.content.decode()
    assert response.status_code == 200
    assert "<title>Sign In · Firezone</title>" in text
    assert ">Acme<" in text
    assert "Sign in with a configured provider" in text and "<strong>Vault</strong>" in text
    assert "Sign in with username and password" in text and 'id="userpass_form"' in text
    assert "Sign in with email" in text and 'id="email_form"' in text
    assert text.index("Vault") < text.index("userpass_form") < text.index("email_form")
    assert "Meant to sign in from a client instead?" in text
    assert "Looking for a different account?" in text


def test_sign_in_page_by_id_and_hidden_params(client, acme) -> None:
    text = client.get(f"/{acme.account.pk}?as=client&state=S&nonce=N&x=1").content.decode()
    assert '<input type="hidden" name="as" value="client">' in text
    assert '<input type="hidden" name="state" value="S">' in text
    assert '<input type="hidden" name="nonce" value="N">' in text
    assert 'name="x"' not in text
    assert "Meant to sign in from a client instead?" not in text


@pytest.mark.parametrize("path", ["/no_such_account", "/static", "/dev", "/error", "/a-b"])
def test_unknown_or_reserved_account_is_404(client, path) -> None:
    AccountFactory(slug="dev_account")
    response = client.get(path)
    assert response.status_code == 404
    assert "Sorry, we couldn&#x27;t find this page." in response.content.decode() or (
        "Sorry, we couldn't find this page." in response.content.decode()
    )


def test_account_without_active_providers_is_404(client) -> None:
    account = AccountFactory(slug="empty")
    ProviderFactory(account=account, disabled_at=timezone.now())
    assert client.get("/empty").status_code == 404


def test_disabled_account_hides_forms_for_clients_only(client, acme) -> None:
    Account.objects.filter(pk=acme.account.pk).update(disabled_at=timezone.now())
    disabled = "This account has been disabled. Please contact your administrator to re-enable it."
    browser = client.get("/acme").content.decode()
    assert disabled in browser and 'id="email_form"' in browser
    app = client.get("/acme?as=client&nonce=n&state=s").content.decode()
    assert disabled in app and 'id="email_form"' not in app and "userpass_form" not in app


def test_trial_ended_message(client) -> None:
    acme = make_acme(metadata={"stripe": {"trial_ends_at": "2020-01-01T00:00:00Z"}})
    assert acme
    text = client.get("/acme").content.decode()
    assert "Your Enterprise pilot needs to be renewed." in text


def test_default_provider_redirects_clients_only(client, acme) -> None:
    vault = ProviderFactory(
        account=acme.account, oidc=True, name="Vault", assigned_default_at=timezone.now()
    )
    response = client.get("/acme?as=client&nonce=N&state=S")
    assert response.status_code == 302
    assert response["Location"] == (
        f"/acme/sign_in/providers/{vault.pk}/redirect?as=client&nonce=N&state=S"
    )
    assert client.get("/acme").status_code == 200


def test_signed_in_admin_skips_the_sign_in_page(client, acme) -> None:
    inject_session(client, acme.admin_identity)
    assert client.get("/acme")["Location"] == "/acme/sites"
    assert client.get("/acme?redirect_to=/acme/policies")["Location"] == "/acme/policies"
    assert client.get("/acme?redirect_to=/other/sites")["Location"] == "/acme/sites"
    assert client.get("/acme?redirect_to=/acmecorp/sites")["Location"] == "/acme/sites"
    assert client.get("/acme?redirect_to=//evil.test/acme")["Location"] == "/acme/sites"
    # A client sign-in is not short-circuited by the browser session (§8 scenario 25).
    assert client.get("/acme?as=client&nonce=n&state=s").status_code == 200


# --- access levels and sessions -----------------------------------------------------------------


def test_protected_page_redirects_with_return_path(client, acme) -> None:
    response = client.get("/acme/sites?x=1")
    assert response["Location"] == "/acme?redirect_to=%2Facme%2Fsites%3Fx%3D1"
    assert _messages(client.get(response["Location"])) == [SIGN_IN_REQUIRED]
    response = client.post("/acme/sites")
    assert response.status_code in (302, 405)


def test_htmx_requests_get_a_client_redirect(client, acme) -> None:
    response = client.get("/acme/sites", HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"].startswith("/acme?redirect_to=")


def test_non_admin_session_gets_404(client, acme) -> None:
    user = ActorFactory(account=acme.account)
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    inject_session(client, identity)
    response = client.get("/acme/sites")
    assert response.status_code == 404
    assert b"Sorry, we couldn" in response.content


def test_admin_page_renders_app_layout(client, acme) -> None:
    inject_session(client, acme.admin_identity)
    text = client.get("/acme/sites").content.decode()
    assert "<title>Sites · Firezone</title>" in text
    assert 'id="user-menu-button"' in text and 'id="drawer-navigation"' in text
    assert f"/acme/actors/{acme.admin.pk}" in text and 'href="/acme/sign_out"' in text
    assert ADMIN_EMAIL in text
    for label in ("Sites", "Actors", "Groups", "Clients", "Resources", "Policies", "Relays"):
        assert f">{label}<" in text
    assert "Identity Providers" in text and ">Billing<" not in text


def test_account_banners(client, settings) -> None:
    settings.BILLING_ENABLED = True  # the billing sentence needs a provisioned account
    acme = make_acme(
        warning="You have exceeded the following limits: users",
        metadata={"stripe": {"customer_id": "cus_1"}},
    )
    Account.objects.filter(pk=acme.account.pk).update(disabled_at=timezone.now())
    inject_session(client, acme.admin_identity)
    text = client.get("/acme/sites").content.decode()
    assert "You have exceeded the following limits: users." in text
    assert "Please check your" in text and "/acme/settings/billing" in text
    assert "This account has been disabled. Please" in text and "contact support" in text
    assert "re-activate it." in text


def test_token_revocation_signs_the_browser_out(client, acme) -> None:
    inject_session(client, acme.admin_identity)
    assert client.get("/acme/sites").status_code == 200
    Token.objects.filter(type="browser").delete()
    response = client.get("/acme/sites")
    assert response["Location"].startswith("/acme?redirect_to=")
    assert client.session[SESSIONS_KEY] == []


def test_identity_deletion_and_expiry_sign_out(client, acme) -> None:
    inject_session(client, acme.admin_identity)
    Token.objects.filter(type="browser").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/acme/sites").status_code == 302
    inject_session(client, acme.admin_identity)
    acme.admin_identity.delete()
    assert client.get("/acme/sites").status_code == 302


def test_session_is_bound_to_the_user_agent(acme) -> None:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    other = Client(HTTP_USER_AGENT="curl/8.0")
    other.cookies = client.cookies
    assert other.get("/acme/sites").status_code == 302


def test_session_cookie_slides(client, acme) -> None:
    inject_session(client, acme.admin_identity)
    response = client.get("/acme/sites")
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == 4 * 3600 and cookie["httponly"] and cookie["samesite"] == "Lax"


def test_several_accounts_at_once_and_at_most_six(client) -> None:
    identities = []
    for n in range(MAX_SESSIONS + 1):
        account = AccountFactory(slug=f"acct_{n}")
        provider = ProviderFactory(account=account)
        actor = ActorFactory(account=account, admin=True)
        identities.append(IdentityFactory(actor=actor, account=account, provider=provider))
    for identity in identities[:2]:
        inject_session(client, identity)
    assert client.get("/acct_0/sites").status_code == 200
    assert client.get("/acct_1/sites").status_code == 200
    # Another account's token is never used for this account.
    assert client.get("/acct_2/sites").status_code == 302

    from firezone.web.session import store_session

    request = HttpRequest()
    request.session = client.session
    for identity in identities[2:]:
        from accounts.tests.portal import browser_token

        store_session(request, identity.account, browser_token(identity))
    assert len(request.session[SESSIONS_KEY]) == MAX_SESSIONS
    assert request.session[SESSIONS_KEY][0][1] == str(identities[1].account_id)


# --- sign out -----------------------------------------------------------------------------------


def test_sign_out_revokes_and_keeps_other_accounts(client, acme) -> None:
    other = make_other_account()
    inject_session(client, other)
    inject_session(client, acme.admin_identity)
    session = client.session
    session["preferred_locale"] = "de"
    session.save()
    before = client.cookies[settings.SESSION_COOKIE_NAME].value
    response = client.get("/acme/sign_out")
    assert response["Location"] == "/acme"
    assert not Token.objects.filter(type="browser", account=acme.account).exists()
    assert client.cookies[settings.SESSION_COOKIE_NAME].value != before
    assert client.session["preferred_locale"] == "de"
    assert [e[1] for e in client.session[SESSIONS_KEY]] == [str(other.account_id)]
    assert client.get("/acme/sites").status_code == 302
    assert client.get(f"/{other.account.slug}/sites").status_code == 200
    page = client.get("/acme")
    assert "Sign in with username and password" in page.content.decode()


def make_other_account():
    account = AccountFactory(slug="other_corp")
    provider = ProviderFactory(account=account)
    actor = ActorFactory(account=account, admin=True)
    return IdentityFactory(actor=actor, account=account, provider=provider)


def test_sign_out_when_signed_out(client, acme) -> None:
    response = client.get("/acme/sign_out")
    assert response["Location"] == "/acme"
    assert RECENT_ACCOUNTS_COOKIE not in response.cookies


def test_sign_out_uses_the_provider_logout_url(client, acme, monkeypatch) -> None:
    monkeypatch.setitem(
        logout.LOGOUT_URL_BUILDERS,
        "email",
        lambda provider, identity, account: f"https://idp.test/logout?post=/{account.slug}",
    )
    inject_session(client, acme.admin_identity)
    assert client.get("/acme/sign_out")["Location"] == "https://idp.test/logout?post=/acme"


def test_failing_logout_builder_is_ignored(client, acme, monkeypatch) -> None:
    def broken(*args):
        raise RuntimeError("idp down")

    monkeypatch.setitem(logout.LOGOUT_URL_BUILDERS, "email", broken)
    inject_session(client, acme.admin_identity)
    assert client.get("/acme/sign_out")["Location"] == "/acme"


def test_client_sign_out_deep_link(client, acme) -> None:
    inject_session(client, acme.admin_identity)
    response = client.get("/acme/sign_out?as=client&state=S+1")
    assert response["Location"] == "firezone://handle_client_sign_out_callback?state=S+1"
    assert not Token.objects.filter(type="browser").exists()


# --- client pages -------------------------------------------------------------------------------


def test_client_redirect_without_cookie(client, acme) -> None:
    response = client.get("/acme/sign_in/client_redirect")
    assert response["Location"] == "/acme/sign_in/client_auth_error"
    text = client.get(response["Location"]).content.decode()
    assert "Sign in error!" in text and "Acme" in text
    assert "Please close this window and start the sign in process again." in text


def test_client_redirect_with_forged_cookie(client, acme) -> None:
    client.cookies["fz_client_auth"] = "forged"
    response = client.get("/acme/sign_in/client_redirect")
    assert response["Location"] == "/acme/sign_in/client_auth_error"


def test_client_and_browser_sessions_coexist(client, acme) -> None:
    inject_session(client, acme.admin_identity)
    params = {"as": "client", "nonce": "n", "state": "s"}
    response = client.post(
        f"/acme/sign_in/providers/{acme.userpass_provider.pk}/verify_credentials",
        {"userpass[provider_identifier]": "admin", "userpass[secret]": "Firezone1234", **params},
    )
    assert response.status_code == 200
    assert client.get("/acme/sites").status_code == 200
    assert [e[:2] for e in client.session[SESSIONS_KEY]] == [["browser", str(acme.account.pk)]]
    location = client.get("/acme/sign_in/client_redirect")["Location"]
    assert parse_qs(urlsplit(location).query)["state"] == ["s"]


# --- errors, headers, dev pages -----------------------------------------------------------------


def test_json_error_variants(client) -> None:
    response = client.get("/no_such_account", HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert json.loads(response.content) == {"errors": {"detail": "Not Found"}}
    response = client.get("/error/500", HTTP_ACCEPT="application/json")
    assert response.status_code == 500
    assert json.loads(response.content) == {"errors": {"detail": "internal_error"}}


def test_error_pages(client) -> None:
    response = client.get("/error/404")
    assert response.status_code == 404 and b"<title>404 Not Found</title>" in response.content
    response = client.get("/error/500")
    assert response.status_code == 500
    assert b"Something went wrong." in response.content
    assert b"Firezone platform status" in response.content
    assert client.get("/error/418").status_code == 404


def test_security_headers(client, acme) -> None:
    first = client.get("/acme")
    second = client.get("/acme")
    csp = first["Content-Security-Policy"]
    assert "default-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp
    assert "img-src 'self' data: " in csp and "gravatar" not in csp  # GRAVATAR_ENABLED off
    assert csp != second["Content-Security-Policy"]  # a fresh nonce per request
    assert first["X-Frame-Options"] == "DENY"
    assert first["X-Content-Type-Options"] == "nosniff"
    assert first["X-Permitted-Cross-Domain-Policies"] == "none"
    assert "Strict-Transport-Security" not in first


def test_hsts_for_https(client, settings) -> None:
    settings.EXTERNAL_URL = "https://portal.example.com"
    response = client.get("/")
    assert response["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains; preload"


def test_forms_need_csrf(acme) -> None:
    strict = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=UA)
    response = strict.post(
        f"/acme/sign_in/providers/{acme.email_provider.pk}/request_email_otp",
        {"email[provider_identifier]": ADMIN_EMAIL},
    )
    assert response.status_code == 403
    assert mail.outbox == []


def test_static_stylesheet_and_healthz(client) -> None:
    response = client.get("/static/firezone/portal.css")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/css")
    assert client.get("/static/../settings.py").status_code == 404
    assert client.get("/healthz").status_code == 200


def test_dev_mailbox(client, acme) -> None:
    client.post(
        f"/acme/sign_in/providers/{acme.email_provider.pk}/request_email_otp",
        {"email[provider_identifier]": ADMIN_EMAIL},
    )
    data = client.get("/dev/mailbox/json").json()["data"]
    assert data[0]["subject"] == "Firezone sign in token" and data[0]["to"] == [ADMIN_EMAIL]
    assert b"Firezone sign in token" in client.get("/dev/mailbox").content


def test_browserconfig(client) -> None:
    response = client.get("/browser/config.xml")
    assert response.status_code == 200 and b"mstile-150x150.png" in response.content
