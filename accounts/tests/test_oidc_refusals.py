"""OpenID Connect sign-in (portal.md §3.8, §3.12, §9 item 12) against a fake IdP served over real
HTTP: the callbacks that are refused (no just-in-time provisioning, state, ID token verification
of signature, iss, aud, exp and nonce, code replay, token endpoint and userinfo errors).

Shared fixtures: accounts/tests/_oidc.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Account, AuthIdentity, AuthProvider, Token
from accounts.tests._oidc import (  # noqa: F401
    MSG_EXPIRED,
    MSG_METHOD,
    MSG_NOT_ALLOWED,
    account_fixture,
    admin_identity,
    flashes,
    follow_callback,
    idp_fixture,
    provider_fixture,
    sign_in,
    start,
    stored_sessions,
)
from accounts.tests.factories import (
    ProviderFactory,
)
from accounts.tests.fake_idp import FakeIdP, rsa_key
from accounts.views.oidc import state_cookie_name

pytestmark = pytest.mark.django_db

# --- callback: refusals --------------------------------------------------------------------------


def test_no_just_in_time_provisioning(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    before = (AuthIdentity.objects.count(), Token.objects.count())

    response = sign_in(
        client, provider, idp, sub="stranger", email="s@acme.test", query="?redirect_to=/acme/x"
    )

    assert response.status_code == 302
    # The callback URL names the account by id: back to `/<account id>` with the params.
    assert response["Location"] == f"/{account.pk}?redirect_to=%2Facme%2Fx"
    assert flashes(response) == [MSG_NOT_ALLOWED]
    assert (AuthIdentity.objects.count(), Token.objects.count()) == before
    assert stored_sessions(client) == []


def test_disabled_actor_cannot_sign_in(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-d")
    identity.actor.disabled_at = timezone.now()
    identity.actor.save()
    response = sign_in(client, provider, idp, sub="sub-d")
    assert flashes(response) == [MSG_NOT_ALLOWED]


def test_state_mismatch(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    tampered = callback.replace("state=", "state=x")

    response = follow_callback(client, tampered)

    assert response["Location"] == f"/{account.pk}"
    assert flashes(response) == [MSG_EXPIRED]
    assert response.cookies[state_cookie_name(provider.pk)]["max-age"] == 0
    # The cookie is gone: even the genuine callback fails now.
    response = follow_callback(client, callback)
    assert flashes(response) == [MSG_EXPIRED]
    assert idp.token_requests == []


def test_callback_without_prior_redirect(client: Client, provider: AuthProvider) -> None:
    response = client.get(f"/acme/sign_in/providers/{provider.pk}/handle_callback?state=x&code=y")
    assert response["Location"] == "/acme"
    assert flashes(response) == [MSG_EXPIRED]


def test_tampered_or_foreign_state_cookie(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    other = ProviderFactory(
        account=account, oidc=True, adapter_config=idp.adapter_config(client_id="other")
    )
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    value = client.cookies[state_cookie_name(provider.pk)].value
    # Provider A's cookie copied under provider B's name does not verify (salted per provider).
    client.cookies[state_cookie_name(other.pk)] = value
    other_callback = callback.replace(str(provider.pk), str(other.pk))
    assert flashes(follow_callback(client, other_callback)) == [MSG_EXPIRED]
    # A modified cookie does not verify either.
    client.cookies[state_cookie_name(provider.pk)] = value[:-2] + "xx"
    assert flashes(follow_callback(client, callback)) == [MSG_EXPIRED]


def test_idp_error_in_the_callback(client: Client, provider: AuthProvider) -> None:
    response = client.get(
        f"/acme/sign_in/providers/{provider.pk}/handle_callback"
        "?error=access_denied&error_description=End-User+aborted+interaction"
    )
    assert response["Location"] == "/acme"
    assert flashes(response) == [
        "Invalid request. error: access_denied. error_description: End-User aborted interaction"
    ]
    response = client.get(f"/acme/sign_in/providers/{provider.pk}/handle_callback")
    assert flashes(response) == ["Invalid request."]


@pytest.mark.parametrize(
    "overrides",
    [
        {"nonce": "not-the-one-we-sent"},
        {"nonce": None},
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"iat": None},
    ],
    ids=["nonce-mismatch", "nonce-missing", "expired", "audience", "issuer", "no-iat"],
)
def test_invalid_id_tokens_are_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP, overrides: dict[str, Any]
) -> None:
    identity = admin_identity(provider, "sub-1")
    idp.id_token_overrides = overrides
    response = sign_in(client, provider, idp, sub="sub-1")
    assert flashes(response) == [MSG_NOT_ALLOWED]
    identity.refresh_from_db()
    assert identity.provider_state == {}
    assert stored_sessions(client) == []


def test_id_token_signed_with_an_unknown_key_is_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    idp.sign_with = rsa_key("k1")  # same key id, different key: bad signature
    assert flashes(sign_in(client, provider, idp, sub="sub-1")) == [MSG_NOT_ALLOWED]
    idp.sign_with = rsa_key("k2")  # unknown key id: refetched JWKS, still unknown
    assert flashes(sign_in(client, provider, idp, sub="sub-1")) == [MSG_NOT_ALLOWED]


def test_rotated_idp_key_is_picked_up(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    admin_identity(provider, "sub-1")
    assert sign_in(client, provider, idp, sub="sub-1")["Location"] == "/acme/sites"
    idp.key = rsa_key("k-new")  # the cached JWKS lacks this kid
    client.cookies.clear()
    assert sign_in(client, provider, idp, sub="sub-1")["Location"] == "/acme/sites"


def test_code_replay_is_refused(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    assert follow_callback(client, callback)["Location"] == "/acme/sites"
    # Same state again, with a fresh state cookie for a new flow: state mismatch.
    start(client, provider)
    assert flashes(follow_callback(client, callback)) == [MSG_EXPIRED]


def test_authorization_response_from_another_issuer_is_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    mixed_up = callback.replace("iss=http", "iss=https")
    assert flashes(follow_callback(client, mixed_up)) == [MSG_NOT_ALLOWED]
    assert idp.token_requests == []  # the code never went to the token endpoint


def test_token_endpoint_errors(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    idp.codes.clear()  # the IdP forgot the code: invalid_grant
    assert flashes(follow_callback(client, callback)) == [MSG_NOT_ALLOWED]


def test_userinfo_about_someone_else_is_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    idp.userinfo = {"sub": "sub-2", "email": "two@acme.test"}
    assert flashes(sign_in(client, provider, idp, sub="sub-1")) == [MSG_NOT_ALLOWED]


def test_provider_disabled_during_the_round_trip(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    AuthProvider.objects.filter(pk=provider.pk).update(disabled_at=timezone.now())
    assert flashes(follow_callback(client, callback)) == [MSG_METHOD]
