"""Settings → Identity Providers: the list page and the default provider (portal.md §4.13.1) and
choosing the adapter of a new provider (§4.13.2).

Shared fixtures: accounts/tests/_identity_providers.py.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuthProvider
from accounts.tests._identity_providers import (  # noqa: F401
    BASE,
    A,
    _settings_fixture,
    acme_fixture,
    client_fixture,
    flash,
    oidc_provider,
    sync_provider,
    text,
)
from accounts.tests.factories import (
    GroupFactory,
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.portal import Acme

pytestmark = pytest.mark.django_db

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
