"""Settings → Identity Providers pages (portal.md §4.13.1-§4.13.7, §9 items 5 and 6).

The connect flow runs against `FakeIdP`, a real OpenID provider over HTTP in a thread, so the
portal's real network path (discovery, token exchange, JWKS, userinfo) is exercised.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import oidc
from accounts.models import Actor, AuthIdentity, AuthProvider, Token
from accounts.services.tokens import token_create
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.fake_idp import FakeIdP
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from accounts.views.identity_providers.connect import connect_cookie_name

pytestmark = pytest.mark.django_db

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


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.EXTERNAL_URL = "https://portal.example.com"
    settings.OIDC_ALLOW_HTTP_LOOPBACK = True
    oidc.clear_caches()


@pytest.fixture
def acme() -> Acme:
    return make_acme(features={"idp_sync": True})


@pytest.fixture
def client(acme: Acme) -> Client:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    return client


@pytest.fixture
def idp() -> Any:
    server = FakeIdP().start()
    oidc.clear_caches()
    yield server
    server.stop()
    oidc.clear_caches()


@pytest.fixture
def no_discovery(monkeypatch: Any) -> None:
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


# --- list (§4.13.1) -------------------------------------------------------------------------------


def test_list_renders(client: Client, acme: Acme) -> None:
    vault = oidc_provider(acme, name="Vault", assigned_default_at=timezone.now())
    response = client.get(BASE)
    assert response.status_code == 200
    body = text(response)
    assert "<title>Identity Providers · Firezone</title>" in body
    for copy in (
        "Identity Providers Settings",
        "Add Identity Provider",
        "Identity providers authenticate and sync your users and groups with an external source.",
        "Default Authentication Provider",
        "Make Default",
        "When selected, users signing in from the Firezone client will be taken directly to this "
        "provider for authentication.",
        "All Identity Providers",
        "https://www.firezone.dev/kb/authenticate?utm_source=product",
    ):
        assert copy in body, copy
    assert 'id="default-provider-form"' in body and 'id="default-provider-select"' in body
    # Options: None + non-email/userpass providers; the current default selected.
    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)</option>', body)
    assert [(v, s, label) for v, s, label in options] == [
        ("none", "", "None"),
        (str(vault.pk), " selected", "Vault"),
    ]
    assert f'id="providers-{acme.email_provider.pk}"' in body
    assert f'href="{BASE}/system/{acme.email_provider.pk}"' in body
    assert f'href="{BASE}/openid_connect/{vault.pk}"' in body
    assert ">default</span>" in body
    assert "OpenID Connect" in body and ">Email<" in body
    assert re.search(r"Created <a [^>]+>1 identities</a> and <a [^>]+>0 groups</a>", body)
    assert f"/acme/actors?actors_filter[provider_id]={acme.email_provider.pk}" in body
    assert 'data-live-topics="changes:auth_providers"' in body


def test_list_status_and_sync_status(client: Client, acme: Acme) -> None:
    pending = oidc_provider(
        acme,
        name="Pending",
        disabled_at=timezone.now(),
        adapter_state={"status": "pending_access_token"},
    )
    oidc_provider(acme, name="Off", disabled_at=timezone.now())
    google = sync_provider(
        acme,
        adapter_state={"access_token": "a", "expires_at": "2030-01-02T03:04:05+00:00"},
        last_synced_at=timezone.now() - timedelta(minutes=5),
    )
    IdentityFactory(account=acme.account, provider=google, created_by="provider")
    GroupFactory(account=acme.account, provider=google, provider_identifier="G:1")
    GroupFactory(account=acme.account, provider=google, provider_identifier="G:2")
    sync_provider(acme, A.OKTA, name="Okta")
    body = text(client.get(BASE))
    assert "Provisioning" in body
    assert f'href="{BASE}/openid_connect/{pending.pk}/redirect">Connect IdP</a>' in body
    assert "Disabled" in body
    assert (
        "No refresh token provided by IdP and access token expires on 2030-01-02 03:04:05 UTC"
        in body
    )
    assert re.search(r"Synced <a [^>]+>1 identity</a> and <a [^>]+>2 groups</a>", body)
    assert "Never synced" in body
    assert "Active" in body
    assert "Google Workspace" in body and "Okta" in body


def test_list_empty_and_sorting(client: Client, acme: Acme) -> None:
    response = client.get(f"{BASE}?providers_order_by=providers:desc:name")
    assert response.status_code == 200
    response = client.get(f"{BASE}?providers_order_by=providers:desc:nope")
    assert response.status_code == 302
    assert flash(response) == "The page was reset due to invalid pagination filter."


def _list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(BASE).status_code == 200
    return len(captured.captured_queries)


def test_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    oidc_provider(acme)
    one = _list_queries(client)
    for _ in range(49):
        oidc_provider(acme)
    assert _list_queries(client) == one


def test_default_provider_set_and_clear(client: Client, acme: Acme) -> None:
    vault = oidc_provider(acme, name="Vault")
    response = client.post(BASE, {"action": "default_provider", "provider_id": str(vault.pk)})
    assert response.status_code == 302 and response["Location"] == BASE
    assert flash(response) == "Default authentication provider set to Vault"
    vault.refresh_from_db()
    assert vault.assigned_default_at is not None
    response = client.post(BASE, {"action": "default_provider", "provider_id": "none"})
    assert flash(response) == "Default authentication provider cleared"
    vault.refresh_from_db()
    assert vault.assigned_default_at is None


@pytest.mark.parametrize("which", ["email", "disabled", "foreign", "malformed"])
def test_default_provider_failures(client: Client, acme: Acme, which: str) -> None:
    choices = {
        "email": lambda: acme.email_provider.pk,
        "disabled": lambda: oidc_provider(acme, disabled_at=timezone.now()).pk,
        "foreign": lambda: ProviderFactory(oidc=True).pk,
        "malformed": lambda: "not-a-uuid",
    }
    response = client.post(BASE, {"action": "default_provider", "provider_id": choices[which]()})
    assert response.status_code == 302
    assert (
        flash(response)
        == "Failed to update default auth provider. Contact support if this issue persists."
    )
    assert not AuthProvider.objects.filter(assigned_default_at__isnull=False).exists()


# --- choose the adapter (§4.13.2) -----------------------------------------------------------------


def test_choose_idp_type_with_sync(client: Client) -> None:
    body = text(client.get(f"{BASE}/new"))
    assert "<title>New Identity Provider · Firezone</title>" in body
    assert (
        "Set up SSO authentication using your own identity provider. Directory sync also "
        "available for certain providers."
    ) in body
    ids = re.findall(r'id="idp-option-([a-z_]+)" href="([^"]+)"', body)
    assert ids == [
        ("google_workspace", f"{BASE}/google_workspace/new"),
        ("microsoft_entra", f"{BASE}/microsoft_entra/new"),
        ("okta", f"{BASE}/okta/new"),
        ("jumpcloud", f"{BASE}/jumpcloud/new"),
        ("mock", f"{BASE}/mock/new"),
        ("openid_connect", f"{BASE}/openid_connect/new"),
    ]
    for label in ("Google Workspace", "Microsoft EntraID", "Okta", "JumpCloud", "OpenID Connect"):
        assert label in body


def test_choose_idp_type_without_sync_upsells(client: Client, acme: Acme) -> None:
    acme.account.features = {"idp_sync": False}
    acme.account.save()
    body = text(client.get(f"{BASE}/new"))
    ids = dict(re.findall(r'id="idp-option-([a-z_]+)" href="([^"]+)"', body))
    assert "mock" not in ids
    assert ids["google_workspace"] == f"{BASE}/openid_connect/new?provider=google_workspace"
    assert ids["okta"] == f"{BASE}/openid_connect/new?provider=okta"
    assert ids["openid_connect"] == f"{BASE}/openid_connect/new"
    response = client.get(f"{BASE}/google_workspace/new")
    assert response["Location"] == f"{BASE}/openid_connect/new?provider=google_workspace"
    assert client.get(f"{BASE}/mock/new").status_code == 404


def test_adapters_offered_follow_the_setting(client: Client, settings: Any) -> None:
    settings.AUTH_PROVIDER_ADAPTERS = ["email", "openid_connect"]
    body = text(client.get(f"{BASE}/new"))
    assert re.findall(r'id="idp-option-([a-z_]+)"', body) == ["openid_connect"]
    assert client.get(f"{BASE}/okta/new").status_code == 404
    assert client.get(f"{BASE}/openid_connect/new").status_code == 200


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


# --- detail pages and events (§4.13.5, §4.13.6, §9 items 5 and 6) ---------------------------------


def test_oidc_detail(client: Client, acme: Acme) -> None:
    vault = oidc_provider(acme, name="Vault", assigned_default_at=timezone.now())
    body = text(client.get(f"{BASE}/openid_connect/{vault.pk}"))
    assert "<title>Identity Provider: Vault · Firezone</title>" in body
    assert "Identity Provider: <code>Vault</code>" in body
    assert 'id="provider"' in body
    for row in (
        "Name",
        "Status",
        "Type",
        "Response Type",
        "Scope",
        "Client ID",
        "Discovery URL",
        "Created",
    ):
        assert f"<th>{row}</th>" in body, row
    assert "openid email profile" in body and vault.adapter_config["client_id"] in body
    assert "https://idp.example.com/.well-known/openid-configuration" in body
    assert ">default</span>" in body
    for copy in ("Edit", "Disable", "Reconnect", "Delete Identity Provider", "Danger Zone"):
        assert copy in body
    assert "Confirm disabling the Provider" in body
    assert (
        "This will <strong>immediately</strong> sign out all Actors who were signed in using this "
        "Provider." in body
    )
    assert (
        "This will remove <strong>all</strong> Identities, Groups and Policies associated with "
        "this provider." in body
    )
    assert vault.adapter_config["client_secret"] not in body.replace("secret</", "")


def test_sync_detail_with_error_box_and_stale_actors(client: Client, acme: Acme) -> None:
    google = sync_provider(
        acme, last_syncs_failed=5, last_sync_error="401 from Google", last_synced_at=None
    )
    ActorFactory(account=acme.account, name="Gone", last_synced_at=timezone.now())
    kept = ActorFactory(account=acme.account, name="Kept", last_synced_at=timezone.now())
    IdentityFactory(actor=kept, account=acme.account, provider=acme.email_provider)
    body = text(client.get(f"{BASE}/google_workspace/{google.pk}"))
    assert "Directory sync is enabled for this provider." in body
    assert "Read more about directory sync." in body
    assert "<th>Sync Status</th>" in body and "Never synced" in body
    assert "IdP provider reported an error during the last sync:" in body
    assert "401 from Google" in body
    assert (
        "You have 1 Actor(s) that were synced from this provider and do not have any other "
        "identities." in body
    )
    assert "Confirm deletion of stale Actors" in body
    assert "and directory sync will be paused." in body
    assert "remove <strong>all</strong> Actors and Groups associated with this provider." in body
    response = client.post(
        f"{BASE}/google_workspace/{google.pk}", {"action": "delete_stale_actors"}
    )
    assert response.status_code == 302
    assert flash(response) == "1 stale Actor(s) deleted."
    assert set(Actor.objects.filter(account=acme.account).values_list("name", flat=True)) == {
        "Admin",
        "Kept",
    }
    assert "Actor(s) that were synced" not in text(
        client.get(f"{BASE}/google_workspace/{google.pk}")
    )


def test_pending_sync_provider_has_no_enable(client: Client, acme: Acme) -> None:
    google = sync_provider(
        acme, disabled_at=timezone.now(), adapter_state={"status": "pending_access_token"}
    )
    body = text(client.get(f"{BASE}/google_workspace/{google.pk}"))
    assert "(disabled)" in body and "Provisioning" in body
    assert 'id="confirm-enable"' not in body and "Reconnect" in body
    pending_oidc = oidc_provider(
        acme, disabled_at=timezone.now(), adapter_state={"status": "pending_access_token"}
    )
    assert 'id="confirm-enable"' in text(client.get(f"{BASE}/openid_connect/{pending_oidc.pk}"))


def test_jumpcloud_setup_sync(client: Client, acme: Acme) -> None:
    jumpcloud = sync_provider(acme, A.JUMPCLOUD, name="JC")
    page = f"{BASE}/jumpcloud/{jumpcloud.pk}"
    assert "Setup Sync" in text(client.get(page))
    response = client.post(page, {"action": "setup_sync"})
    assert (
        flash(response)
        == "Directory sync through WorkOS is not configured for this Firezone deployment."
    )


def test_disable_enable_delete(client: Client, acme: Acme) -> None:
    vault = oidc_provider(acme, name="Vault")
    user = ActorFactory(account=acme.account)
    identity = IdentityFactory(actor=user, account=acme.account, provider=vault)
    token_create(type="browser", account=acme.account, actor=user, identity=identity)
    page = f"{BASE}/openid_connect/{vault.pk}"

    response = client.post(page, {"action": "disable"})
    assert response["Location"] == page
    assert flash(response) == "Identity provider was disabled."
    vault.refresh_from_db()
    assert vault.disabled_at is not None
    assert not Token.objects.filter(identity=identity).exists()  # §9 item 5: tokens revoked
    body = text(client.get(page))
    assert "Identity Provider: <code>Vault</code> (disabled)" in body
    assert "Are you sure you want to enable this provider?" in body

    response = client.post(page, {"action": "enable"})
    assert flash(response) == "Identity provider was enabled."
    vault.refresh_from_db()
    assert vault.disabled_at is None

    response = client.post(page, {"action": "delete"})
    assert response["Location"] == BASE
    assert flash(response) == "Identity provider was deleted."
    assert not AuthProvider.objects.filter(pk=vault.pk).exists()
    assert client.post(page, {"action": "nope"}).status_code == 404


def test_last_active_provider_cannot_be_disabled_or_deleted(acme: Acme) -> None:
    vault = oidc_provider(acme, name="Vault")
    client = signed_in_through(acme, vault)
    email_page = f"{BASE}/system/{acme.email_provider.pk}"
    client.post(email_page, {"action": "disable"})  # the other one is still active
    page = f"{BASE}/openid_connect/{vault.pk}"
    response = client.post(page, {"action": "disable"})
    assert response["Location"] == page
    assert flash(response) == "You can not disable the last active provider of the account."
    response = client.post(page, {"action": "delete"})
    assert flash(response) == "You can not delete the last active provider of the account."
    vault.refresh_from_db()
    assert vault.disabled_at is None


def test_system_provider_page(acme: Acme) -> None:
    client = signed_in_through(acme, oidc_provider(acme, name="Vault"))
    page = f"{BASE}/system/{acme.email_provider.pk}"
    body = text(client.get(page))
    assert "Identity Provider: <code>Email</code>" in body
    assert "<th>Name</th>" in body and "<th>Status</th>" in body and "<th>Created</th>" in body
    assert "Delete Identity Provider" not in body and "Danger Zone" not in body
    assert "Edit" not in re.sub(r"<title>.*?</title>", "", body).split("provider-header")[1][:800]
    # The breadcrumb points at this page (§9 item 4).
    assert f'<a href="{page}">Email</a>' in body
    assert client.post(page, {"action": "delete"}).status_code == 404
    response = client.post(page, {"action": "disable"})
    assert flash(response) == "Identity provider was disabled."
    assert "(disabled)" in text(client.get(page))


def test_adapter_and_page_kind_must_match(client: Client, acme: Acme) -> None:
    vault = oidc_provider(acme)
    assert client.get(f"{BASE}/system/{vault.pk}").status_code == 404
    assert client.get(f"{BASE}/okta/{vault.pk}").status_code == 404
    assert client.get(f"{BASE}/openid_connect/{acme.email_provider.pk}").status_code == 404


def _provider_urls(provider: AuthProvider) -> list[str]:
    page = f"{BASE}/{provider.adapter}/{provider.pk}"
    return [page, f"{page}/edit"]


def test_other_accounts_and_malformed_ids_are_404(client: Client, acme: Acme) -> None:
    foreign = ProviderFactory(oidc=True, account=AccountFactory(slug="other"))
    foreign_email = ProviderFactory(account=foreign.account)
    for path in [
        *_provider_urls(foreign),
        f"{BASE}/system/{foreign_email.pk}",
        f"{BASE}/openid_connect/nope",
        f"{BASE}/openid_connect/nope/edit",
        f"{BASE}/system/nope",
    ]:
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"action": "delete"}).status_code == 404, path
    assert AuthProvider.objects.filter(pk=foreign.pk).exists()


def test_regular_user_gets_404(acme: Acme) -> None:
    user = ActorFactory(account=acme.account)
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, identity)
    vault = oidc_provider(acme)
    for path in [
        BASE,
        f"{BASE}/new",
        f"{BASE}/openid_connect/new",
        f"{BASE}/system/{acme.email_provider.pk}",
        *_provider_urls(vault),
        f"{BASE}/openid_connect/{vault.pk}/redirect",
        f"{BASE}/openid_connect/{vault.pk}/handle_callback?state=x&code=y",
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert NOT_FOUND in text(response)


def test_signed_out_is_sent_to_sign_in(acme: Acme) -> None:
    response = Client().get(BASE)
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


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
