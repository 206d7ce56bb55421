"""Settings → Identity Providers: the connect flow (portal.md §4.13.7).

The flow runs against `FakeIdP`, a real OpenID provider over HTTP in a thread, so the portal's
real network path (discovery, token exchange, JWKS, userinfo) is exercised.

Shared fixtures: accounts/tests/_identity_providers.py.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuthIdentity, AuthProvider
from accounts.tests._identity_providers import (  # noqa: F401
    BASE,
    A,
    _settings_fixture,
    acme_fixture,
    client_fixture,
    flash,
    idp_fixture,
    sync_provider,
    text,
)
from accounts.tests.factories import (
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.fake_idp import FakeIdP
from accounts.tests.portal import UA, Acme, inject_session
from accounts.views.identity_providers.connect import connect_cookie_name

pytestmark = pytest.mark.django_db

# --- connect flow (§4.13.7) -----------------------------------------------------------------------


def _connect(client: Client, provider: AuthProvider) -> Any:
    return client.get(f"{BASE}/{provider.adapter}/{provider.pk}/redirect")


def _callback(client: Client, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def _pending(acme: Acme, idp: FakeIdP, adapter: str = A.OPENID_CONNECT) -> AuthProvider:
    return ProviderFactory(
        account=acme.account,
        name="Vault",
        adapter=adapter,
        provisioner="manual" if adapter == A.OPENID_CONNECT else "custom",
        adapter_config=idp.adapter_config(),
        adapter_state={"status": "pending_access_token"},
        disabled_at=timezone.now(),
    )


def test_connect_oidc(client: Client, acme: Acme, idp: FakeIdP) -> None:
    provider = _pending(acme, idp)
    response = _connect(client, provider)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{idp.issuer}/authorize?")
    query = parse_qs(urlsplit(location).query)
    callback = (
        f"https://portal.example.com/{acme.account.pk}/settings/identity_providers/"
        f"openid_connect/{provider.pk}/handle_callback"
    )
    assert query["redirect_uri"] == [callback]
    assert query["code_challenge_method"] == ["S256"] and query["nonce"]
    assert "prompt" not in query
    cookie = response.cookies[connect_cookie_name(provider.pk)]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"

    back = idp.login(location, sub="admin-sub", email="admin@acme.test")
    response = _callback(client, back)
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}/openid_connect/{provider.pk}"
    assert response.cookies[connect_cookie_name(provider.pk)].value == ""
    provider.refresh_from_db()
    assert provider.disabled_at is None
    assert provider.adapter_state == {"status": "connected"}
    identity = AuthIdentity.objects.get(provider=provider)
    assert identity.actor == acme.admin and identity.provider_identifier == "admin-sub"
    assert identity.email == "admin@acme.test" and identity.provider_state["id_token"]
    assert "Active" in text(client.get(response["Location"]))

    # Reconnecting updates the same identity.
    back = idp.login(_connect(client, provider)["Location"], sub="admin-sub")
    assert _callback(client, back).status_code == 302
    assert AuthIdentity.objects.filter(provider=provider).count() == 1


def test_connect_sync_adapter_keeps_the_token_state(
    client: Client, acme: Acme, idp: FakeIdP
) -> None:
    provider = _pending(acme, idp, A.GOOGLE_WORKSPACE)
    provider.last_syncs_failed = 7
    provider.sync_disabled_at = timezone.now()
    provider.save()
    location = _connect(client, provider)["Location"]
    assert parse_qs(urlsplit(location).query)["prompt"] == ["consent"]
    response = _callback(client, idp.login(location, sub="g-sub", email="admin@acme.test"))
    assert response["Location"] == f"{BASE}/google_workspace/{provider.pk}"
    provider.refresh_from_db()
    assert provider.disabled_at is None and provider.sync_disabled_at is None
    assert provider.last_syncs_failed == 0
    assert provider.adapter_state["access_token"] and provider.adapter_state["refresh_token"]
    assert provider.adapter_state["claims"]["sub"] == "g-sub"


def test_connect_redirect_errors(client: Client, acme: Acme, idp: FakeIdP) -> None:
    response = client.get(f"{BASE}/openid_connect/{uuid.uuid4()}/redirect")
    assert response["Location"] == BASE
    assert flash(response) == "Provider does not exist."
    foreign = ProviderFactory(oidc=True)
    response = client.get(f"{BASE}/openid_connect/{foreign.pk}/redirect")
    assert flash(response) == "Provider does not exist."
    mock = sync_provider(acme, A.MOCK, adapter_config={})
    assert flash(client.get(f"{BASE}/mock/{mock.pk}/redirect")) == "Provider does not exist."
    provider = _pending(acme, idp)
    idp.discovery_status = 503
    response = _connect(client, provider)
    assert response["Location"] == BASE
    assert flash(response) == "Your identity provider returned 503 HTTP code."


def test_connect_callback_errors(client: Client, acme: Acme, idp: FakeIdP) -> None:
    provider = _pending(acme, idp)
    page = f"{BASE}/openid_connect/{provider.pk}"
    callback = f"{page}/handle_callback"

    response = client.get(f"{callback}?state=x&code=y")
    assert response["Location"] == page
    assert flash(response) == "Your session has expired, please try again."

    response = client.get(f"{callback}?error=access_denied&error_description=Nope")
    assert flash(response) == "Your IdP returned an error (access_denied): Nope"

    response = client.get(f"{callback}?state=x")
    assert flash(response) == "Invalid request."

    response = client.get(f"{BASE}/openid_connect/{uuid.uuid4()}/handle_callback?state=x&code=y")
    assert response["Location"] == BASE
    assert flash(response) == "Provider is disabled or does not exist."

    # A tampered state.
    location = _connect(client, provider)["Location"]
    back = idp.login(location, sub="admin-sub")
    response = _callback(client, back.replace("state=", "state=x"))
    assert flash(response) == "Your session has expired, please try again."

    # An ID token that expired.
    location = _connect(client, provider)["Location"]
    idp.id_token_overrides = {"exp": 1000, "iat": 900}
    response = _callback(client, idp.login(location, sub="admin-sub"))
    assert flash(response) == "The provider returned an expired token, please try again."

    # An ID token for another client.
    location = _connect(client, provider)["Location"]
    idp.id_token_overrides = {"aud": "someone-else"}
    response = _callback(client, idp.login(location, sub="admin-sub"))
    assert flash(response) == "The provider returned an invalid token, please try again."
    idp.id_token_overrides = {}

    # The IdP user is someone else's identity.
    other = ActorFactory(account=acme.account)
    IdentityFactory(
        actor=other, account=acme.account, provider=provider, provider_identifier="taken"
    )
    location = _connect(client, provider)["Location"]
    response = _callback(client, idp.login(location, sub="taken"))
    assert flash(response) == "Failed to connect a provider, please try again."
    provider.refresh_from_db()
    assert provider.disabled_at is not None


def test_connect_state_is_bound_to_the_admin(client: Client, acme: Acme, idp: FakeIdP) -> None:
    provider = _pending(acme, idp)
    location = _connect(client, provider)["Location"]
    stolen = client.cookies[connect_cookie_name(provider.pk)].value
    other_admin = ActorFactory(account=acme.account, admin=True)
    other_identity = IdentityFactory(
        actor=other_admin, account=acme.account, provider=acme.email_provider
    )
    other = Client(HTTP_USER_AGENT=UA)
    inject_session(other, other_identity)
    other.cookies[connect_cookie_name(provider.pk)] = stolen
    response = _callback(other, idp.login(location, sub="admin-sub"))
    assert flash(response) == "Your session has expired, please try again."
    assert not AuthIdentity.objects.filter(provider=provider).exists()
