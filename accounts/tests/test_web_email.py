"""Email one-time code sign-in pages (portal.md §3.6, §3.9, §3.10; issue 5 hardening)."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.utils import timezone

from accounts.auth import Context
from accounts.models import AuthIdentity, Token
from accounts.services.tokens import authenticate
from accounts.sign_in.flow import CLIENT_AUTH_COOKIE
from accounts.tests.factories import ActorFactory, IdentityFactory, ProviderFactory
from accounts.tests.portal import ADMIN_EMAIL, UA, last_code, last_link, make_acme
from accounts.views.email import state_cookie_name
from firezone.errors import Unauthorized
from firezone.web import ratelimit
from firezone.web.session import SESSIONS_KEY

pytestmark = pytest.mark.django_db

MISSING = "The sign in token is missing or expired. Please try again."
INVALID = "The sign in token is invalid or expired."


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.SIGN_IN_EMAIL_MIN_SECONDS = 0
    cache.clear()


@pytest.fixture
def acme():
    return make_acme()


@pytest.fixture
def client():
    return Client(HTTP_USER_AGENT=UA)


def _request(client, acme, email=ADMIN_EMAIL, query="", **extra):
    url = f"/acme/sign_in/providers/{acme.email_provider.pk}/request_email_otp"
    return client.post(
        url + (f"?{query}" if query else ""), {"email[provider_identifier]": email, **extra}
    )


def _verify(client, acme, secret, identity_id=ADMIN_EMAIL, **params):
    url = f"/acme/sign_in/providers/{acme.email_provider.pk}/verify_sign_in_token"
    return client.get(url, {"identity_id": identity_id, "secret": secret, **params})


def _flash(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def _follow_flash(client, response) -> list[str]:
    return _flash(client.get(response["Location"]))


# --- request ------------------------------------------------------------------------------------


def test_known_email_gets_code_and_magic_link(client, acme) -> None:
    response = _request(client, acme, query="", redirect_to="/acme/policies")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == f"/acme/sign_in/providers/email/{acme.email_provider.pk}"
    assert parse_qs(location.query)["redirect_to"] == ["/acme/policies"]
    assert state_cookie_name(acme.email_provider.pk) in response.cookies

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Firezone sign in token"
    assert message.to == [ADMIN_EMAIL]
    assert "Finish Signing In!" in message.body
    assert "This email is valid for 10 minutes." in message.body
    assert "Account name: Acme" in message.body and f"User Agent: {UA}" in message.body
    assert isinstance(message, EmailMultiAlternatives)
    html = message.alternatives[0]
    assert html[1] == "text/html" and last_code() in str(html[0])
    link = urlsplit(last_link())
    query = parse_qs(link.query)
    assert link.path == f"/acme/sign_in/providers/{acme.email_provider.pk}/verify_sign_in_token"
    assert query["identity_id"] == [str(acme.admin_identity.pk)]
    assert query["secret"] == [last_code()]
    assert query["redirect_to"] == ["/acme/policies"]

    page = client.get(response["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "Please check your email" in text
    assert (
        f"If <strong>{ADMIN_EMAIL}</strong> is registered, a sign-in token has been sent." in text
    )
    assert 'id="verify-sign-in-token"' in text and "Enter token from email" in text
    assert "Resend email" in text and "Open Gmail" in text and "Open Outlook" in text


def test_code_is_stored_hashed_with_argon2(client, acme) -> None:
    _request(client, acme)
    code = last_code()
    acme.admin_identity.refresh_from_db()
    state = acme.admin_identity.provider_state
    assert state["code_hash"].startswith("$argon2id$")
    assert code not in str(state)
    token = Token.objects.get(identity=acme.admin_identity, type="email")
    assert token.remaining_attempts == 3
    assert token.expires_at is not None
    assert timedelta(minutes=9) < token.expires_at - timezone.now() <= timedelta(minutes=10)


def test_unknown_email_looks_the_same(client, acme) -> None:
    response = _request(client, acme, email="nobody@bar.com")
    assert response.status_code == 302
    assert "/sign_in/providers/email/" in response["Location"]
    assert state_cookie_name(acme.email_provider.pk) in response.cookies
    assert mail.outbox == []
    text = client.get(response["Location"]).content.decode()
    assert (
        "If <strong>nobody@bar.com</strong> is registered, a sign-in token has been sent." in text
    )


def test_requests_take_the_same_minimum_time(client, acme, settings) -> None:
    settings.SIGN_IN_EMAIL_MIN_SECONDS = 0.3
    for email in (ADMIN_EMAIL, "nobody@bar.com"):
        started = time.monotonic()
        _request(client, acme, email=email)
        assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("data", "message", "location"),
    [
        ({"email[provider_identifier]": "no-at-sign"}, "Invalid email address.", "/acme?as=client"),
        ({}, "Invalid request.", "/acme"),
    ],
)
def test_request_input_errors(client, acme, data, message, location) -> None:
    url = f"/acme/sign_in/providers/{acme.email_provider.pk}/request_email_otp"
    response = client.post(url, {**data, "as": "client"})
    assert response["Location"] == location
    assert _follow_flash(client, response) == [message]
    assert mail.outbox == []


def test_request_with_other_provider_is_refused(client, acme) -> None:
    userpass = ProviderFactory(account=acme.account, userpass=True)
    for provider_id in (userpass.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        url = f"/acme/sign_in/providers/{provider_id}/request_email_otp"
        response = client.post(url, {"email[provider_identifier]": ADMIN_EMAIL})
        assert response["Location"] == "/acme"
        assert _follow_flash(client, response) == ["You may not use this method to sign in."]
    acme.email_provider.disabled_at = timezone.now()
    acme.email_provider.save()
    response = _request(client, acme)
    assert response["Location"] == "/acme"


def test_resend_flashes_and_sends_again(client, acme) -> None:
    _request(client, acme)
    response = _request(client, acme, query="resend=true")
    assert len(mail.outbox) == 2
    assert _follow_flash(client, response) == ["Email was resent."]


def test_fourth_request_sends_nothing_and_keeps_earlier_code(client, acme) -> None:
    for _ in range(3):
        _request(client, acme)
    code = last_code()
    cookie = client.cookies[state_cookie_name(acme.email_provider.pk)].value
    response = _request(client, acme)
    assert len(mail.outbox) == 3
    # Same page, no new state: the third code still works (checked before rotating, §9 #23).
    assert "/sign_in/providers/email/" in response["Location"]
    assert state_cookie_name(acme.email_provider.pk) not in response.cookies
    assert client.cookies[state_cookie_name(acme.email_provider.pk)].value == cookie
    response = _verify(client, acme, code)
    assert response["Location"] == "/acme/sites"


def test_rate_limited_unknown_email_behaves_like_known(client, acme) -> None:
    answers = {}
    for email in (ADMIN_EMAIL, "nobody@bar.com"):
        client.cookies.clear()
        seen = []
        for _ in range(4):
            response = _request(client, acme, email=email)
            seen.append(
                (
                    response.status_code,
                    urlsplit(response["Location"]).path,
                    state_cookie_name(acme.email_provider.pk) in response.cookies,
                )
            )
        answers[email] = seen
    assert answers[ADMIN_EMAIL] == answers["nobody@bar.com"]
    assert [c for *_, c in answers[ADMIN_EMAIL]] == [True, True, True, False]


def test_per_ip_request_limit(client, acme, monkeypatch) -> None:
    monkeypatch.setattr(
        ratelimit, "EMAIL_REQUESTS_PER_IP", ratelimit.Limit("test_email_ip", 2, 300)
    )
    _request(client, acme, email="a@bar.com")
    _request(client, acme, email="b@bar.com")
    for email in ("c@bar.com", ADMIN_EMAIL):
        response = _request(client, acme, email=email)
        assert response["Location"] == "/acme"
        assert _follow_flash(client, response) == [
            "Too many sign in requests. Please try again in a few minutes."
        ]
    assert mail.outbox == []


# --- code page ----------------------------------------------------------------------------------


def test_code_page_needs_signed_identifier(client, acme) -> None:
    url = f"/acme/sign_in/providers/email/{acme.email_provider.pk}"
    assert client.get(url).status_code == 404
    response = client.get(url, {"signed_provider_identifier": "forged", "as": "client"})
    assert response["Location"] == "/acme?as=client"
    assert _follow_flash(client, response) == ["Please try to sign in again."]


def test_code_page_redirects_signed_in_admin(client, acme) -> None:
    response = _request(client, acme)
    _verify(client, acme, last_code())
    assert client.get(response["Location"])["Location"] == "/acme/sites"


# --- verify -------------------------------------------------------------------------------------


def test_code_typed_in_upper_case_signs_in(client, acme) -> None:
    _request(client, acme)
    response = _verify(client, acme, last_code().upper())
    assert response.status_code == 302 and response["Location"] == "/acme/sites"
    assert response.cookies[state_cookie_name(acme.email_provider.pk)]["max-age"] == 0
    assert not Token.objects.filter(identity=acme.admin_identity, type="email").exists()
    acme.admin_identity.refresh_from_db()
    assert acme.admin_identity.provider_state == {}
    entries = client.session[SESSIONS_KEY]
    assert [e[:2] for e in entries] == [["browser", str(acme.account.pk)]]
    assert client.get("/acme/sites").status_code == 200


def test_magic_link_signs_in_and_honours_redirect_to(client, acme) -> None:
    _request(client, acme, redirect_to="/acme/policies")
    response = client.get(last_link())
    assert response["Location"] == "/acme/policies"


def test_wrong_code_then_right_code_needs_a_new_email(client, acme) -> None:
    _request(client, acme)
    code = last_code()
    response = _verify(client, acme, "zzzzz" if code != "zzzzz" else "yyyyy")
    assert urlsplit(response["Location"]).path == (
        f"/acme/sign_in/providers/email/{acme.email_provider.pk}"
    )
    page = client.get(response["Location"])
    assert _flash(page) == [INVALID]
    assert "Please check your email" in page.content.decode()
    response = _verify(client, acme, code)
    assert response["Location"] == "/acme"
    assert _follow_flash(client, response) == [MISSING]


def test_link_in_another_browser_is_missing(acme) -> None:
    first = Client(HTTP_USER_AGENT=UA)
    _request(first, acme)
    other = Client(HTTP_USER_AGENT=UA)
    response = other.get(last_link())
    assert response["Location"] == "/acme"
    assert _follow_flash(other, response) == [MISSING]


def test_fourth_attempt_is_refused_even_with_the_right_code(client, acme) -> None:
    _request(client, acme)
    code = last_code()
    cookie_name = state_cookie_name(acme.email_provider.pk)
    cookie = client.cookies[cookie_name].value  # an attacker replays the state cookie
    wrong = "zzzzz" if code != "zzzzz" else "yyyyy"
    for _ in range(3):
        client.cookies[cookie_name] = cookie
        response = _verify(client, acme, wrong)
        assert _follow_flash(client, response) == [INVALID]
    client.cookies[cookie_name] = cookie
    response = _verify(client, acme, code)
    assert _follow_flash(client, response) == [INVALID]
    token = Token.objects.get(identity=acme.admin_identity, type="email")
    assert token.remaining_attempts == 0
    assert token.expires_at is not None and token.expires_at <= timezone.now()
    assert SESSIONS_KEY not in client.session


def test_unknown_email_verification_answers_the_same(client, acme) -> None:
    _request(client, acme, email="nobody@bar.com")
    cookie_name = state_cookie_name(acme.email_provider.pk)
    cookie = client.cookies[cookie_name].value
    for _ in range(4):
        client.cookies[cookie_name] = cookie
        response = _verify(client, acme, "abcde", identity_id="nobody@bar.com")
        assert urlsplit(response["Location"]).path.startswith("/acme/sign_in/providers/email/")
        assert _follow_flash(client, response) == [INVALID]


def test_expired_code_is_refused(client, acme) -> None:
    _request(client, acme)
    Token.objects.filter(identity=acme.admin_identity).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = _verify(client, acme, last_code())
    assert _follow_flash(client, response) == [INVALID]


def test_disabled_actor_cannot_verify(client, acme) -> None:
    _request(client, acme)
    acme.admin.disabled_at = timezone.now()
    acme.admin.save()
    response = _verify(client, acme, last_code())
    assert _follow_flash(client, response) == [INVALID]


def test_verify_input_errors(client, acme) -> None:
    url = f"/acme/sign_in/providers/{acme.email_provider.pk}/verify_sign_in_token"
    response = client.get(url, {"secret": "x", "as": "client"})
    assert response["Location"] == "/acme?as=client"
    assert _follow_flash(client, response) == ["Invalid request."]
    _request(client, acme)
    other = ProviderFactory(account=acme.account, userpass=True)
    response = client.get(
        f"/acme/sign_in/providers/{other.pk}/verify_sign_in_token",
        {"identity_id": ADMIN_EMAIL, "secret": "abcde"},
    )
    assert _follow_flash(client, response) == [MISSING]  # the cookie is per provider


def test_verify_per_ip_limit(client, acme, monkeypatch) -> None:
    monkeypatch.setattr(ratelimit, "EMAIL_VERIFY_PER_IP", ratelimit.Limit("test_vip", 1, 300))
    _request(client, acme)
    cookie_name = state_cookie_name(acme.email_provider.pk)
    cookie = client.cookies[cookie_name].value
    assert _follow_flash(client, _verify(client, acme, "zzzzz")) == [INVALID]
    client.cookies[cookie_name] = cookie
    response = _verify(client, acme, last_code())
    assert _follow_flash(client, response) == [
        "Too many sign in attempts. Please try again in a few minutes."
    ]


def test_non_admin_is_refused_in_the_browser(client, acme) -> None:
    user = ActorFactory(account=acme.account, name="User")
    IdentityFactory(
        actor=user,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier="user@acme.test",
    )
    _request(client, acme, email="user@acme.test")
    response = _verify(client, acme, last_code(), identity_id="user@acme.test")
    assert response["Location"] == "/acme"
    assert _follow_flash(client, response) == [
        "You must have the admin role in Firezone to sign in to the admin portal."
    ]
    assert not Token.objects.filter(type="browser").exists()  # §9 item 14
    assert SESSIONS_KEY not in client.session


# --- device client ------------------------------------------------------------------------------


def test_client_sign_in_hands_the_fragment_to_the_app(client, acme) -> None:
    params = {"as": "client", "nonce": "N0nce", "state": "S1"}
    url = f"/acme/sign_in/providers/{acme.email_provider.pk}/request_email_otp"
    client.post(url, {"email[provider_identifier]": ADMIN_EMAIL, **params})
    assert parse_qs(urlsplit(last_link()).query)["nonce"] == ["N0nce"]
    response = _verify(client, acme, last_code(), **params)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Sign in successful." in text and "You may close this window." in text
    assert '<meta http-equiv="refresh" content="0; url=/acme/sign_in/client_redirect">' in text
    cookie = response.cookies[CLIENT_AUTH_COOKIE]
    assert cookie["samesite"] == "Strict" and cookie["max-age"] == 120 and cookie["httponly"]
    assert SESSIONS_KEY not in client.session  # client tokens never live in the browser

    response = client.get("/acme/sign_in/client_redirect")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.scheme == "firezone-fd0020211111"
    assert location.netloc == "handle_client_sign_in_callback"
    query = parse_qs(location.query)
    assert sorted(query) == [
        "account_name",
        "account_slug",
        "actor_name",
        "fragment",
        "identity_provider_identifier",
        "state",
    ]
    assert query["account_name"] == ["Acme"] and query["account_slug"] == ["acme"]
    assert query["actor_name"] == ["Admin"] and query["state"] == ["S1"]
    assert query["identity_provider_identifier"] == [ADMIN_EMAIL]
    fragment = query["fragment"][0]
    assert fragment.startswith(".")
    context = Context(type="client", user_agent="Firezone/1.0", remote_ip="100.64.0.1")
    subject = authenticate("N0nce" + fragment, context=context)
    assert subject.actor.pk == acme.admin.pk
    token = Token.objects.get(pk=subject.token_id)
    assert token.type == "client"
    assert token.expires_at is not None
    assert timedelta(days=6) < token.expires_at - timezone.now() <= timedelta(days=7)
    with pytest.raises(Unauthorized):
        authenticate(fragment, context=context)
    # Single use: the cookie is gone.
    assert client.get("/acme/sign_in/client_redirect")["Location"] == (
        "/acme/sign_in/client_auth_error"
    )


def test_client_handler_setting(client, acme, settings) -> None:
    settings.CLIENT_HANDLER = "http://127.0.0.1:9999/"
    params = {"as": "client", "nonce": "n", "state": "s"}
    _request(client, acme, **params)
    _verify(client, acme, last_code(), **params)
    location = client.get("/acme/sign_in/client_redirect")["Location"]
    assert location.startswith("http://127.0.0.1:9999/handle_client_sign_in_callback?")


@pytest.mark.parametrize("params", [{"as": "client", "state": "s"}, {"as": "client", "nonce": "n"}])
def test_client_without_nonce_or_state_gets_a_dedicated_error(client, acme, params) -> None:
    _request(client, acme, **params)
    response = _verify(client, acme, last_code(), **params)
    assert response.status_code == 302 and response["Location"].startswith("/acme?as=client")
    (message,) = _follow_flash(client, response)
    assert "client" in message and "admin role" not in message
    assert not Token.objects.filter(type="client").exists()


def test_client_nonce_with_a_dot_is_refused(client, acme) -> None:
    params = {"as": "client", "nonce": "a.b", "state": "s"}
    _request(client, acme, **params)
    response = _verify(client, acme, last_code(), **params)
    assert response.status_code == 302
    assert not Token.objects.filter(type="client").exists()


def test_regular_user_may_sign_in_to_a_client(client, acme) -> None:
    user = ActorFactory(account=acme.account, name="User")
    identity: AuthIdentity = IdentityFactory(
        actor=user,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier="user@acme.test",
    )
    params = {"as": "client", "nonce": "n", "state": "s"}
    _request(client, acme, email="user@acme.test", **params)
    response = _verify(client, acme, last_code(), identity_id=str(identity.pk), **params)
    assert response.status_code == 200 and b"Sign in successful." in response.content
