"""Username and password sign-in (portal.md §3.7, §8 scenarios 11-14, 24) and its brute-force
limits (issue 5)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts.models import Token
from accounts.tests.factories import ActorFactory
from accounts.tests.portal import PASSWORD, UA, make_acme, userpass_identity
from firezone.web import ratelimit
from firezone.web.session import SESSIONS_KEY

pytestmark = pytest.mark.django_db

INVALID = "Invalid username or password."


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def acme():
    return make_acme(userpass=True)


@pytest.fixture
def client():
    return Client(HTTP_USER_AGENT=UA)


def _post(client, acme, username="admin", password=PASSWORD, provider=None, **params):
    provider = provider or acme.userpass_provider
    return client.post(
        f"/acme/sign_in/providers/{provider.pk}/verify_credentials",
        {"userpass[provider_identifier]": username, "userpass[secret]": password, **params},
    )


def _flash(client, response) -> tuple[list[str], str]:
    page = client.get(response["Location"])
    return [str(m) for m in page.context["messages"]], page.content.decode()


def test_success_lands_on_sites(client, acme) -> None:
    response = _post(client, acme, username="  admin ")
    assert response.status_code == 302 and response["Location"] == "/acme/sites"
    assert len(client.session[SESSIONS_KEY]) == 1
    page = client.get("/acme/sites")
    assert page.status_code == 200
    assert 'id="user-menu-button"' in page.content.decode()


def test_session_key_is_rotated_at_sign_in(client, acme) -> None:
    client.get("/acme")
    session = client.session
    session["probe"] = 1
    session.save()
    before = client.cookies["_firezone_key"].value
    _post(client, acme)
    assert client.cookies["_firezone_key"].value != before


@pytest.mark.parametrize(
    ("username", "password"), [("admin", "wrong-password!"), ("nobody", PASSWORD)]
)
def test_failure_keeps_username(client, acme, username, password) -> None:
    response = _post(client, acme, username=username, password=password, **{"as": "client"})
    assert response["Location"] == "/acme?as=client"
    messages, text = _flash(client, response)
    assert messages == [INVALID]
    assert 'class="flash flash-error"' in text
    assert f'value="{username}"' in text


def test_disabled_or_deleted_actor_cannot_sign_in(client, acme) -> None:
    acme.admin.disabled_at = timezone.now()
    acme.admin.save()
    assert _flash(client, _post(client, acme))[0] == [INVALID]
    acme.admin.delete()
    assert _flash(client, _post(client, acme))[0] == [INVALID]


def test_non_admin_is_refused_in_the_browser(client, acme) -> None:
    user = ActorFactory(account=acme.account, name="User")
    userpass_identity(acme, user, "user")
    response = _post(client, acme, username="user")
    assert response["Location"] == "/acme"
    assert _flash(client, response)[0] == [
        "You must have the admin role in Firezone to sign in to the admin portal."
    ]
    assert not Token.objects.filter(type="browser").exists()


def test_non_admin_may_sign_in_to_a_client(client, acme) -> None:
    user = ActorFactory(account=acme.account, name="User")
    userpass_identity(acme, user, "user")
    response = _post(client, acme, username="user", **{"as": "client", "nonce": "n", "state": "s"})
    assert response.status_code == 200 and b"Sign in successful." in response.content
    location = client.get("/acme/sign_in/client_redirect")["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["actor_name"] == ["User"] and query["identity_provider_identifier"] == ["user"]


def test_missing_fields_and_wrong_provider(client, acme) -> None:
    response = client.post(
        f"/acme/sign_in/providers/{acme.userpass_provider.pk}/verify_credentials",
        {"userpass[provider_identifier]": "admin"},
    )
    assert _flash(client, response)[0] == ["Invalid request."]
    response = _post(client, acme, provider=acme.email_provider)
    assert _flash(client, response)[0] == ["You may not use this method to sign in."]
    acme.userpass_provider.disabled_at = timezone.now()
    acme.userpass_provider.save()
    assert _flash(client, _post(client, acme))[0] == ["You may not use this method to sign in."]


def test_brute_force_is_limited_per_ip_and_username(client, acme) -> None:
    for _ in range(ratelimit.USERPASS_FAILURES_PER_USER.limit):
        assert _flash(client, _post(client, acme, password="wrong-password!"))[0] == [INVALID]
    # Now even the right password gets the very same answer (no lockout oracle).
    response = _post(client, acme)
    assert response["Location"] == "/acme"
    assert _flash(client, response)[0] == [INVALID]
    assert SESSIONS_KEY not in client.session
    # Another username from the same IP is not locked by it.
    other = ActorFactory(account=acme.account, admin=True, name="Other")
    userpass_identity(acme, other, "other")
    assert _post(client, acme, username="other")["Location"] == "/acme/sites"
    # From another IP the admin can still sign in.
    elsewhere = Client(HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.9")
    assert _post(elsewhere, acme)["Location"] == "/acme/sites"


def test_per_ip_failures_limit(client, acme, monkeypatch) -> None:
    monkeypatch.setattr(
        ratelimit, "USERPASS_FAILURES_PER_IP", ratelimit.Limit("test_up_ip", 2, 900)
    )
    _flash(client, _post(client, acme, username="a", password="wrong-password!"))
    _flash(client, _post(client, acme, username="b", password="wrong-password!"))
    assert _flash(client, _post(client, acme))[0] == [INVALID]


def test_success_resets_the_username_counter(client, acme) -> None:
    for _ in range(ratelimit.USERPASS_FAILURES_PER_USER.limit - 1):
        _post(client, acme, password="wrong-password!")
    assert _post(client, acme)["Location"] == "/acme/sites"
    client.get("/acme/sign_out")
    for _ in range(ratelimit.USERPASS_FAILURES_PER_USER.limit - 1):
        _post(client, acme, password="wrong-password!")
    assert _post(client, acme)["Location"] == "/acme/sites"


def test_failed_attempts_create_no_server_sessions(client, acme) -> None:
    from django.contrib.sessions.models import Session

    for _ in range(3):
        _flash(client, _post(client, acme, password="wrong-password!"))
    assert Session.objects.count() == 0


def test_nul_byte_in_the_username_is_a_400_not_a_500(client, acme) -> None:
    """Issue 17: the username went to a PostgreSQL query, which refuses NUL in text (a 500)."""
    assert _post(client, acme, username="ad\x00min").status_code == 400
    assert _post(client, acme, password="x\x00").status_code == 400
    assert _post(client, acme).status_code == 302
