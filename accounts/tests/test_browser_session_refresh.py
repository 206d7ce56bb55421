"""Browser-session refresh (billing_sync_jobs.md §2.14, accounts.services.browser_sessions):
an admin signed in through OIDC stays signed in while the IdP grants a refresh, and is signed out
when it refuses. The admin signs in for real against the fake IdP (accounts/tests/fake_idp.py,
real HTTP), which then answers the `refresh_token` grants. The sign-out reaching open pages over
`/live` is in test_browser_session_refresh_live.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Account, AuthIdentity, AuthProvider, Token
from accounts.services.browser_sessions import browser_sessions_refresh
from accounts.tasks import browser_sessions_refresh as refresh_task
from accounts.tests._oidc import (  # noqa: F401
    account_fixture,
    admin_identity,
    idp_fixture,
    provider_fixture,
    sign_in,
)
from accounts.tests.factories import ActorFactory, IdentityFactory, ProviderFactory
from accounts.tests.fake_idp import FakeIdP, rsa_key
from accounts.tests.portal import browser_token

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "external"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def signed_in(client: Client, provider: AuthProvider, idp: FakeIdP) -> tuple[AuthIdentity, Token]:
    """Ada signs in through the IdP; her browser token is then 10 minutes from expiring."""
    identity = admin_identity(provider, "sub-ada")
    response = sign_in(client, provider, idp, sub="sub-ada", email="ada@acme.test")
    assert response.status_code == 302
    assert response["Location"] == "/acme/sites"
    token = Token.objects.get(identity=identity, type=Token.Type.BROWSER)
    Token.objects.filter(pk=token.pk).update(expires_at=timezone.now() + timedelta(minutes=10))
    identity.refresh_from_db()
    token.refresh_from_db()
    return identity, token


def page_status(client: Client) -> int:
    return client.get("/acme/sites").status_code


def test_a_granted_refresh_extends_the_session_and_stores_the_new_grant(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity, token = signed_in(client, provider, idp)
    before = dict(identity.provider_state)
    idp.refresh_expires_in = 7200  # the IdP's new expiry, beyond the 10 h cap's concern

    report = browser_sessions_refresh()

    assert report.as_dict() == {"refreshed": 1, "signed_out": 0, "failed": 0, "skipped": 0}
    request = idp.token_requests[-1]
    assert request["grant_type"] == "refresh_token"
    assert request["refresh_token"] == before["refresh_token"]
    assert "scope" not in request  # the grant keeps what the sign-in was granted
    token.refresh_from_db()
    assert token.expires_at is not None
    assert (
        timezone.now() + timedelta(minutes=119)
        < token.expires_at
        <= timezone.now() + timedelta(hours=2)
    )
    identity.refresh_from_db()
    state = identity.provider_state
    # The IdP rotated the refresh token: the new one is kept, the old one is dead.
    assert state["refresh_token"] != before["refresh_token"]
    assert state["refresh_token"] in idp.refresh_grants
    assert state["access_token"] != before["access_token"]
    assert state["id_token"] != before["id_token"]
    assert state["claims"]["sub"] == "sub-ada"
    assert "nonce" not in state["claims"]
    assert state["userinfo"] == before["userinfo"]
    assert state["expires_at"] == token.expires_at.isoformat()
    # Still signed in; and the next run has nothing to do.
    assert page_status(client) == 200
    assert browser_sessions_refresh().as_dict() == {
        "refreshed": 0,
        "signed_out": 0,
        "failed": 0,
        "skipped": 0,
    }


def test_a_refresh_without_id_token_keeps_the_old_one(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity, token = signed_in(client, provider, idp)
    before = dict(identity.provider_state)
    idp.refresh_id_token = False

    assert browser_sessions_refresh().refreshed == 1

    identity.refresh_from_db()
    assert identity.provider_state["id_token"] == before["id_token"]
    assert identity.provider_state["claims"] == before["claims"]
    assert identity.provider_state["refresh_token"] != before["refresh_token"]
    token.refresh_from_db()
    assert token.expires_at is not None
    assert token.expires_at > timezone.now() + timedelta(minutes=59)


def test_an_answer_without_expiry_extends_nothing(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity, token = signed_in(client, provider, idp)
    idp.refresh_id_token = False
    idp.refresh_expires_in = None
    expires_at = token.expires_at

    assert browser_sessions_refresh().refreshed == 1

    token.refresh_from_db()
    assert token.expires_at == expires_at
    # The rotated refresh token is kept all the same (the old one no longer works).
    identity.refresh_from_db()
    assert identity.provider_state["refresh_token"] in idp.refresh_grants


def test_sessions_outside_the_window_are_left_alone(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    _, token = signed_in(client, provider, idp)
    requests = len(idp.token_requests)
    for expires_in in (timedelta(seconds=4), timedelta(minutes=16)):
        Token.objects.filter(pk=token.pk).update(expires_at=timezone.now() + expires_in)
        assert browser_sessions_refresh().as_dict()["refreshed"] == 0
    assert len(idp.token_requests) == requests


def test_a_revoked_grant_signs_the_browser_out(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    _, token = signed_in(client, provider, idp)
    idp.revoke_refresh_tokens()

    report = browser_sessions_refresh()

    assert report.as_dict() == {"refreshed": 0, "signed_out": 1, "failed": 0, "skipped": 0}
    assert not Token.objects.filter(pk=token.pk).exists()
    response = client.get("/acme/sites")
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


def test_the_idps_invalid_grant_answer_signs_out_only_the_due_sessions(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity, token = signed_in(client, provider, idp)
    # The same admin in another browser, signed in later: not due yet.
    other = Token.objects.get(
        pk=browser_token_for(identity, expires_at=timezone.now() + timedelta(minutes=50))
    )
    idp.refresh_answer = (400, fixture("oidc_token_error_invalid_grant.json"))

    assert browser_sessions_refresh().signed_out == 1

    assert not Token.objects.filter(pk=token.pk).exists()
    assert Token.objects.filter(pk=other.pk).exists()


def browser_token_for(identity: AuthIdentity, *, expires_at: Any) -> Any:
    """A second browser session of `identity` (another browser), expiring at `expires_at`."""
    browser_token(identity, "OtherBrowser/2.0")
    newest = Token.objects.filter(identity=identity, type=Token.Type.BROWSER).latest("inserted_at")
    Token.objects.filter(pk=newest.pk).update(expires_at=expires_at)
    return newest.pk


@pytest.mark.parametrize("bad", ["another_user", "foreign_signature", "expired"])
def test_a_bad_id_token_in_the_answer_signs_out(
    client: Client, provider: AuthProvider, idp: FakeIdP, bad: str
) -> None:
    _, token = signed_in(client, provider, idp)
    if bad == "another_user":
        idp.id_token_overrides = {"sub": "sub-mallory"}
    elif bad == "foreign_signature":
        idp.sign_with = rsa_key("k1")  # same key id, another key
    else:
        idp.id_token_overrides = {"exp": int(timezone.now().timestamp()) - 3600}

    assert browser_sessions_refresh().signed_out == 1

    assert not Token.objects.filter(pk=token.pk).exists()


@pytest.mark.parametrize(
    "answer",
    [
        (503, {"error": "temporarily_unavailable"}),
        (500, b"<html>oops</html>"),
        (401, {"error": "invalid_client"}),
        (200, {"token_type": "Bearer"}),  # no access token
    ],
)
def test_other_idp_trouble_keeps_the_session_for_the_next_run(
    client: Client, provider: AuthProvider, idp: FakeIdP, answer: tuple[int, Any]
) -> None:
    identity, token = signed_in(client, provider, idp)
    state = dict(identity.provider_state)
    idp.refresh_answer = answer

    assert browser_sessions_refresh().failed == 1

    token.refresh_from_db()
    identity.refresh_from_db()
    assert identity.provider_state == state
    assert page_status(client) == 200
    # The IdP is back: the next run refreshes.
    idp.refresh_answer = None
    assert browser_sessions_refresh().refreshed == 1


def test_an_unreachable_idp_keeps_the_session(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    _, token = signed_in(client, provider, idp)
    expires_at = token.expires_at
    idp.stop()  # connection refused at the token endpoint (discovery is cached)

    assert browser_sessions_refresh().failed == 1

    token.refresh_from_db()
    assert token.expires_at == expires_at


def test_non_oidc_sessions_and_identities_without_refresh_token_are_untouched(
    account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    email_provider = ProviderFactory(account=account, name="Email")
    email_admin = IdentityFactory(
        actor=ActorFactory(account=account, admin=True),
        account=account,
        provider=email_provider,
    )
    no_refresh = admin_identity(provider, "sub-bob", provider_state={"access_token": "x"})
    soon = timezone.now() + timedelta(minutes=10)
    tokens = []
    for identity in (email_admin, no_refresh):
        browser_token(identity)
        token = Token.objects.get(identity=identity, type=Token.Type.BROWSER)
        Token.objects.filter(pk=token.pk).update(expires_at=soon)
        tokens.append(token.pk)

    report = browser_sessions_refresh()

    assert report.as_dict() == {"refreshed": 0, "signed_out": 0, "failed": 0, "skipped": 1}
    assert idp.token_requests == []
    assert set(
        Token.objects.filter(pk__in=tokens, expires_at=soon).values_list("pk", flat=True)
    ) == set(tokens)


def test_the_task_runs_the_refresh(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    signed_in(client, provider, idp)

    assert refresh_task() == {"refreshed": 1, "signed_out": 0, "failed": 0, "skipped": 0}
