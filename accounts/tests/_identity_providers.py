"""Shared fixtures and helpers of the Settings → Identity Providers page tests
(test_views_identity_providers_*.py): an admin of `acme` signed in, `FakeIdP`, providers of each
kind and the response helpers.

Import the fixtures a module needs under their `*_fixture` names (they are registered under the
plain names): `from accounts.tests._identity_providers import acme_fixture  # noqa: F401`.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts import oidc
from accounts.models import AuthProvider
from accounts.tests.factories import (
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.fake_idp import FakeIdP
from accounts.tests.portal import UA, Acme, inject_session, make_acme

A = AuthProvider.Adapter

BASE = "/acme/settings/identity_providers"

GOOGLE_KEY = {
    "type": "service_account",
    "project_id": "p",
    "private_key_id": "k",
    "private_key": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
    "client_email": "sync@p.iam.gserviceaccount.com",
    "client_id": "123",
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": "https://oauth2.googleapis.com/token",
    "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
    "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/sync",
    "universe_domain": "googleapis.com",
}

NOT_FOUND = "Sorry, we couldn't find this page."


@pytest.fixture(autouse=True, name="_settings")
def _settings_fixture(settings: Any) -> None:
    settings.EXTERNAL_URL = "https://portal.example.com"
    settings.OIDC_ALLOW_HTTP_LOOPBACK = True
    oidc.clear_caches()


@pytest.fixture(name="acme")
def acme_fixture() -> Acme:
    return make_acme(features={"idp_sync": True})


@pytest.fixture(name="client")
def client_fixture(acme: Acme) -> Client:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    return client


@pytest.fixture(name="idp")
def idp_fixture() -> Any:
    server = FakeIdP().start()
    oidc.clear_caches()
    yield server
    server.stop()
    oidc.clear_caches()


@pytest.fixture(name="no_discovery")
def no_discovery_fixture(monkeypatch: Any) -> None:
    """Discovery documents "fetched" without network (for https URIs of fake IdPs)."""
    monkeypatch.setattr(oidc, "discovery_document", lambda uri: {"issuer": uri})


def flash(response: Any) -> str:
    """The flash this response set (unread earlier ones stay in the storage too)."""
    found = [str(m) for m in get_messages(response.wsgi_request)]
    assert found, "no flash"
    return found[-1]


def text(response: Any) -> str:
    return unescape(response.content.decode())


def signed_in_through(acme: Acme, provider: AuthProvider) -> Client:
    """The admin signed in with an identity at `provider` (disabling the email provider signs
    out the sessions made through it)."""
    identity = IdentityFactory(
        actor=acme.admin, account=acme.account, provider=provider, provider_identifier="admin-sub"
    )
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, identity)
    return client


def assert_connecting(response: Any, connect: str | None = None) -> None:
    """A saved IdP continues with the consent: a page that navigates to its `/redirect` (not
    a redirect of the form post, which the CSP's form-action would block)."""
    assert response.status_code == 200
    found = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]+)">', text(response))
    assert found and found.group(1).endswith("/redirect")
    if connect is not None:
        assert found.group(1) == connect


def oidc_provider(acme: Acme, **kwargs: Any) -> AuthProvider:
    return ProviderFactory(account=acme.account, oidc=True, **kwargs)


def sync_provider(acme: Acme, adapter: str = A.GOOGLE_WORKSPACE, **kwargs: Any) -> AuthProvider:
    fields: dict[str, Any] = {
        "account": acme.account,
        "adapter": adapter,
        "provisioner": AuthProvider.Provisioner.CUSTOM,
        "name": kwargs.pop("name", "Google"),
        "adapter_config": {"client_id": "gid", "client_secret": "gsecret"},
        "adapter_state": {"refresh_token": "r", "access_token": "a"},
    }
    fields.update(kwargs)
    return ProviderFactory(**fields)
