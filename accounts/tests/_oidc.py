"""Shared fixtures and helpers of the OpenID Connect sign-in tests (test_oidc_*.py): a fake IdP
served over real HTTP (accounts/tests/fake_idp.py), an account with an OIDC provider, admin
identities, the sign-in round trip and the flash messages.

Import the fixtures a module needs under their `*_fixture` names (they are registered under the
plain names): `from accounts.tests._oidc import idp_fixture  # noqa: F401`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts import oidc
from accounts.models import Account, AuthIdentity, AuthProvider
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.fake_idp import FakeIdP
from firezone.web.session import SESSIONS_KEY

A = AuthProvider.Adapter

MSG_NOT_ALLOWED = "You may not authenticate to this account."

MSG_EXPIRED = "Your session has expired, please try again."

MSG_METHOD = "You may not use this method to sign in."


@pytest.fixture(name="idp")
def idp_fixture() -> Any:
    server = FakeIdP().start()
    oidc.clear_caches()
    yield server
    server.stop()
    oidc.clear_caches()


@pytest.fixture(name="account")
def account_fixture() -> Account:
    return AccountFactory(name="Acme", slug="acme")


@pytest.fixture(name="provider")
def provider_fixture(account: Account, idp: FakeIdP) -> AuthProvider:
    return ProviderFactory(
        account=account, oidc=True, name="Vault", adapter_config=idp.adapter_config()
    )


def admin_identity(provider: AuthProvider, identifier: str, **kwargs: Any) -> AuthIdentity:
    actor = ActorFactory(account=provider.account, admin=True, name="Ada")
    return IdentityFactory(
        actor=actor,
        account=provider.account,
        provider=provider,
        provider_identifier=identifier,
        email=kwargs.pop("email", None),
        **kwargs,
    )


def start(client: Client, provider: AuthProvider, query: str = "") -> Any:
    return client.get(f"/acme/sign_in/providers/{provider.pk}/redirect{query}")


def follow_callback(client: Client, callback_url: str) -> Any:
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def sign_in(
    client: Client,
    provider: AuthProvider,
    idp: FakeIdP,
    *,
    sub: str,
    query: str = "",
    **claims: Any,
) -> Any:
    response = start(client, provider, query)
    assert response.status_code == 302, response
    return follow_callback(client, idp.login(response["Location"], sub=sub, **claims))


def flashes(response: Any) -> list[str]:
    """The flash messages this response carries. Nothing renders them here (the redirect is not
    followed), so they are dropped from the test client's cookie after reading."""
    found = [m.message for m in get_messages(response.wsgi_request)]
    client = getattr(response, "client", None)
    if client is not None:
        client.cookies.pop("messages", None)
    return found


def stored_sessions(client: Client) -> list[Any]:
    return list(client.session.get(SESSIONS_KEY) or [])
