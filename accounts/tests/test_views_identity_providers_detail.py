"""Settings → Identity Providers: detail pages and their actions (portal.md §4.13.5, §4.13.6, §9
items 5 and 6), and who may see them.

Shared fixtures: accounts/tests/_identity_providers.py.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Actor, AuthProvider, Token
from accounts.services.tokens import token_create
from accounts.tests._identity_providers import (  # noqa: F401
    BASE,
    NOT_FOUND,
    A,
    _settings_fixture,
    acme_fixture,
    client_fixture,
    flash,
    oidc_provider,
    signed_in_through,
    sync_provider,
    text,
)
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.portal import UA, Acme, inject_session

pytestmark = pytest.mark.django_db

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
    # §2.7: "Never synced" only without failures; here the error box says what went wrong.
    assert "<th>Sync Status</th>" in body and "Never synced" not in body
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
