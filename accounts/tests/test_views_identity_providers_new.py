"""Settings → Identity Providers: the OpenID Connect form (portal.md §4.13.3) and the forms of the
other adapters (§4.13.4).

Discovery runs against `FakeIdP`, a real OpenID provider over HTTP in a thread, so the portal's
real network path is exercised.

Shared fixtures: accounts/tests/_identity_providers.py.
"""

from __future__ import annotations

import json
import re
import uuid
from html import unescape
from typing import Any

import pytest
from django.test import Client

from accounts.models import AuthProvider
from accounts.tests._identity_providers import (  # noqa: F401
    BASE,
    GOOGLE_KEY,
    A,
    _settings_fixture,
    acme_fixture,
    assert_connecting,
    client_fixture,
    idp_fixture,
    no_discovery_fixture,
    oidc_provider,
    text,
)
from accounts.tests.fake_idp import FakeIdP
from accounts.tests.portal import Acme

pytestmark = pytest.mark.django_db

# --- OpenID Connect form (§4.13.3) ----------------------------------------------------------------


def test_oidc_new_page(client: Client, acme: Acme) -> None:
    body = text(client.get(f"{BASE}/openid_connect/new"))
    assert "Step 1. Create OAuth application in your identity provider" in body
    assert "Step 2. Configure Firezone" in body
    assert "Step 3" not in body and "UPGRADE TO UNLOCK" not in body
    for scope in ("openid", "email", "profile"):
        assert f"<code>{scope}</code>" in body
    (provider_id,) = re.findall(r'name="id" value="([0-9a-f-]{36})"', body)
    account_id = acme.account.pk
    assert (
        f"https://portal.example.com/{account_id}/sign_in/providers/{provider_id}/handle_callback"
        in body
    )
    assert (
        f"https://portal.example.com/{account_id}/settings/identity_providers/openid_connect/"
        f"{provider_id}/handle_callback" in body
    )
    for copy in (
        "A human-friendly name for this identity provider. This will be displayed to end-users.",
        "Client ID",
        "Client secret",
        "Discovery Document URI",
        'placeholder="https://example.com/.well-known/openid-configuration"',
        "The URI to the OpenID Connect discovery document for your identity provider.",
        'name="response_type" value="code"',
        'name="scope" value="openid email profile"',
        "Connect Identity Provider",
    ):
        assert copy in body, copy


def test_oidc_new_with_provider_shows_sync_upsell(client: Client) -> None:
    body = text(client.get(f"{BASE}/openid_connect/new?provider=google_workspace"))
    assert "Step 3. Enable Directory Sync" in body
    assert "UPGRADE TO UNLOCK" in body
    assert "Directory sync is not enabled on your current plan." in body
    assert "Step 3" not in text(client.get(f"{BASE}/openid_connect/new?provider=nope"))


def test_oidc_new_validation(client: Client) -> None:
    response = client.post(f"{BASE}/openid_connect/new", {"id": str(uuid.uuid4()), "name": ""})
    assert response.status_code == 200
    body = text(response)
    assert body.count("can&#x27;t be blank") == 0
    assert body.count("can't be blank") == 4
    response = client.post(
        f"{BASE}/openid_connect/new",
        {
            "name": "Vault",
            "client_id": "c",
            "client_secret": "typed-secret",
            "discovery_document_uri": "http://idp.example.com/x",
        },
    )
    body = text(response)
    assert "is not a valid URL" in body
    # What the admin typed comes back (masked), nothing else.
    assert 'value="typed-secret"' in body and 'type="password"' in body
    assert not AuthProvider.objects.filter(adapter=A.OPENID_CONNECT).exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda idp: setattr(idp, "discovery_status", 404), "does not exist"),
        (lambda idp: setattr(idp, "discovery_status", 500), "is invalid, got 500 HTTP response"),
        (
            lambda idp: setattr(idp, "discovery_body", b"<html>"),
            "is invalid, unable to parse response",
        ),
    ],
)
def test_oidc_new_discovery_errors(client: Client, idp: FakeIdP, setup: Any, message: str) -> None:
    setup(idp)
    response = client.post(
        f"{BASE}/openid_connect/new",
        {
            "name": "Vault",
            "client_id": "c",
            "client_secret": "s",
            "discovery_document_uri": idp.discovery_uri,
        },
    )
    assert response.status_code == 200
    assert message in text(response)


def test_oidc_new_creates_pending_and_redirects_to_connect(client: Client, idp: FakeIdP) -> None:
    provider_id = str(uuid.uuid4())
    response = client.post(
        f"{BASE}/openid_connect/new",
        {
            "id": provider_id,
            "name": " Vault ",
            "client_id": "portal-client",
            "client_secret": "s3cret",
            "discovery_document_uri": idp.discovery_uri,
            "scope": "openid email profile",
            "response_type": "code",
        },
    )
    assert_connecting(response, f"{BASE}/openid_connect/{provider_id}/redirect")
    provider = AuthProvider.objects.get(pk=provider_id)
    assert provider.name == "Vault" and provider.disabled_at is not None
    assert provider.adapter_state == {"status": "pending_access_token"}
    assert provider.adapter_config["client_secret"] == "s3cret"
    assert provider.provisioner == "manual"


def test_oidc_new_duplicate_client_id_is_a_base_error(
    client: Client, acme: Acme, no_discovery: None
) -> None:
    oidc_provider(acme, adapter_config={"client_id": "dup", "client_secret": "x"})
    response = client.post(
        f"{BASE}/openid_connect/new",
        {
            "name": "Again",
            "client_id": "dup",
            "client_secret": "s",
            "discovery_document_uri": "https://idp.example.com/.well-known/openid-configuration",
        },
    )
    assert response.status_code == 200
    assert 'id="provider-form-errors"' in text(response)
    assert "this provider is already connected" in text(response)
    # The pre-generated id posted twice (e.g. a resubmitted form).
    taken = str(oidc_provider(acme).pk)
    response = client.post(
        f"{BASE}/openid_connect/new",
        {
            "id": taken,
            "name": "Again",
            "client_id": "fresh",
            "client_secret": "s",
            "discovery_document_uri": "https://idp.example.com/.well-known/openid-configuration",
        },
    )
    assert response.status_code == 200
    assert "Provider ID has already been taken" in text(response)


def test_oidc_edit_keeps_secret_unless_typed(client: Client, acme: Acme, idp: FakeIdP) -> None:
    provider = oidc_provider(
        acme, name="Vault", adapter_config=idp.adapter_config(client_secret="stored-secret")
    )
    page = f"{BASE}/openid_connect/{provider.pk}/edit"
    body = text(client.get(page))
    assert "<title>Edit Vault · Firezone</title>" in body
    assert "stored-secret" not in body
    assert 'value="portal-client"' in body and idp.discovery_uri in body
    assert 'name="id"' not in body
    data = {
        "name": "Vault 2",
        "client_id": "portal-client",
        "client_secret": "",
        "discovery_document_uri": idp.discovery_uri,
        "scope": "openid email profile",
        "response_type": "code",
    }
    response = client.post(page, data)
    assert_connecting(response, f"{BASE}/openid_connect/{provider.pk}/redirect")
    provider.refresh_from_db()
    assert provider.name == "Vault 2"
    assert provider.adapter_config["client_secret"] == "stored-secret"
    client.post(page, {**data, "client_secret": "new-secret"})
    provider.refresh_from_db()
    assert provider.adapter_config["client_secret"] == "new-secret"
    response = client.post(page, {**data, "name": ""})
    assert response.status_code == 200 and "can't be blank" in text(response)
    assert "stored-secret" not in text(response) and "new-secret" not in text(response)


# --- the other adapters (§4.13.4) -----------------------------------------------------------------


def _google_data(**overrides: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": "Google Workspace",
        "client_id": "gid",
        "client_secret": "gsecret",
        "service_account_json_key": json.dumps(GOOGLE_KEY),
        **overrides,
    }


def test_google_workspace_new(client: Client, acme: Acme) -> None:
    body = text(client.get(f"{BASE}/google_workspace/new"))
    for copy in (
        "Please note that a Google Workspace Super Admin is <strong>required</strong> to setup "
        "this Identity Provider.",
        "Step 7. Configure Firezone",
        "Firezone OAuth Client",
        "Firezone directory sync",
        "firezone-directory-sync",
        "Service Account JSON Key",
        "The Client ID from Step 5.",
        "Only active users count towards your billing limits.",
        "https://www.googleapis.com/auth/admin.directory.user.readonly",
        'value="Google Workspace"',
    ):
        assert copy in body, copy
    response = client.post(
        f"{BASE}/google_workspace/new", _google_data(service_account_json_key="{nope")
    )
    assert response.status_code == 200 and "is invalid" in text(response)
    response = client.post(
        f"{BASE}/google_workspace/new", _google_data(service_account_json_key='{"type": "x"}')
    )
    assert "is missing project_id" in text(response)
    data = _google_data()
    response = client.post(f"{BASE}/google_workspace/new", data)
    assert_connecting(response, f"{BASE}/google_workspace/{data['id']}/redirect")
    provider = AuthProvider.objects.get(pk=data["id"])
    assert provider.disabled_at is not None and provider.provisioner == "custom"
    assert provider.adapter_config["service_account_json_key"] == GOOGLE_KEY
    assert provider.adapter_config["discovery_document_uri"].startswith(
        "https://accounts.google.com/"
    )
    # Edit: the key and the secret are never shown, and blank keeps them.
    edit = f"{BASE}/google_workspace/{provider.pk}/edit"
    body = text(client.get(edit))
    assert "BEGIN PRIVATE KEY" not in body and "gsecret" not in body
    response = client.post(
        edit,
        {"name": "GW", "client_id": "gid2", "client_secret": "", "service_account_json_key": ""},
    )
    assert_connecting(response)
    provider.refresh_from_db()
    assert provider.name == "GW" and provider.adapter_config["client_id"] == "gid2"
    assert provider.adapter_config["service_account_json_key"] == GOOGLE_KEY
    assert provider.adapter_config["client_secret"] == "gsecret"


def test_microsoft_entra_and_jumpcloud_new(client: Client, no_discovery: None) -> None:
    raw = client.get(f"{BASE}/microsoft_entra/new").content.decode()
    body = unescape(raw)
    assert "Step 1. Create a new App Registration in Microsoft Entra" in body
    assert "login.microsoftonline.com/&lt;azure-tenant-id&gt;/v2.0" in raw
    assert "GroupMember.Read.All" in body and 'value="Microsoft Entra"' in body
    response = client.post(
        f"{BASE}/microsoft_entra/new",
        {
            "name": "Entra",
            "client_id": "e",
            "client_secret": "s",
            "discovery_document_uri": (
                "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration"
            ),
        },
    )
    assert_connecting(response)
    entra = AuthProvider.objects.get(adapter=A.MICROSOFT_ENTRA)
    assert "User.Read.All" in entra.adapter_config["scope"]

    body = text(client.get(f"{BASE}/jumpcloud/new"))
    assert "Step 1. Create a new SSO App in JumpCloud" in body
    assert "Discovery Document URI" not in body
    response = client.post(
        f"{BASE}/jumpcloud/new", {"name": "JumpCloud", "client_id": "j", "client_secret": "s"}
    )
    assert_connecting(response)
    jumpcloud = AuthProvider.objects.get(adapter=A.JUMPCLOUD)
    assert jumpcloud.adapter_config["discovery_document_uri"] == (
        "https://oauth.id.jumpcloud.com/.well-known/openid-configuration"
    )


def test_okta_new_derives_urls(client: Client, no_discovery: None) -> None:
    body = text(client.get(f"{BASE}/okta/new"))
    assert "Step 1. Create a new App Integration in Okta" in body
    assert "Okta Account Domain" in body and "Your Okta account domain." in body
    assert 'id="okta-well-known" hidden' in body
    response = client.post(
        f"{BASE}/okta/new", {"name": "Okta", "client_id": "o", "client_secret": "s"}
    )
    assert response.status_code == 200 and "can't be blank" in text(response)
    response = client.post(
        f"{BASE}/okta/new",
        {
            "name": "Okta",
            "client_id": "o",
            "client_secret": "s",
            "okta_account_domain": "https://acme.okta.com/",
        },
    )
    assert_connecting(response)
    okta = AuthProvider.objects.get(adapter=A.OKTA)
    assert okta.adapter_config["okta_account_domain"] == "acme.okta.com"
    assert okta.adapter_config["api_base_url"] == "https://acme.okta.com"
    assert okta.adapter_config["discovery_document_uri"] == (
        "https://acme.okta.com/.well-known/openid-configuration"
    )
    body = text(client.get(f"{BASE}/okta/{okta.pk}/edit"))
    assert "OIDC well-know configuration URL (readonly)" in body
    assert 'value="https://acme.okta.com/.well-known/openid-configuration"' in body


def test_mock_new_is_enabled_and_goes_to_its_page(client: Client) -> None:
    body = text(client.get(f"{BASE}/mock/new"))
    assert "Configure the Mock adapter" in body
    assert 'value="500"' in body and 'value="2500"' in body and 'value="25"' in body
    response = client.post(
        f"{BASE}/mock/new",
        {"name": "Mock", "num_actors": "-1", "num_groups": "x", "max_actors_per_group": "3"},
    )
    assert response.status_code == 200
    assert "must be greater than or equal to 0" in text(response)
    assert "is invalid" in text(response)
    response = client.post(
        f"{BASE}/mock/new",
        {"name": "Mock", "num_actors": "10", "num_groups": "2", "max_actors_per_group": "3"},
    )
    mock = AuthProvider.objects.get(adapter=A.MOCK)
    assert response["Location"] == f"{BASE}/mock/{mock.pk}"
    assert mock.disabled_at is None and mock.adapter_state == {}
    assert mock.adapter_config == {"num_actors": 10, "num_groups": 2, "max_actors_per_group": 3}
    body = text(client.get(response["Location"]))
    for copy in ("Number of actors", "Number of groups", "Max actors per group", "Description"):
        assert copy in body
    assert "Reconnect" not in body
    response = client.post(
        f"{BASE}/mock/{mock.pk}/edit",
        {"name": "Mock 2", "num_actors": "1", "num_groups": "1", "max_actors_per_group": "1"},
    )
    assert response["Location"] == f"{BASE}/mock/{mock.pk}"
