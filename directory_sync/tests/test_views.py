"""The provider page's sync status and "Sync now" button, and the staff admin action
(billing_sync_jobs.md §2.2, §2.7 "UI status")."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuthProvider
from accounts.tests._identity_providers import (  # noqa: F401
    BASE,
    NOT_FOUND,
    A,
    _settings_fixture,
    acme_fixture,
    client_fixture,
    flash,
    oidc_provider,
    sync_provider,
    text,
)
from accounts.tests.factories import ActorFactory, IdentityFactory
from accounts.tests.portal import UA, Acme, inject_session
from directory_sync import adapters
from directory_sync.directory import SyncUnauthorized
from directory_sync.tests.fake_directory import FakeDirectory
from directory_sync.views import MSG_PROVIDER_DISABLED, MSG_SYNC_PAUSED, MSG_SYNC_QUEUED

pytestmark = pytest.mark.django_db

ERROR_BOX = "IdP provider reported an error during the last sync:"


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> FakeDirectory:
    fake = FakeDirectory()
    monkeypatch.setitem(adapters.DIRECTORIES, A.GOOGLE_WORKSPACE, fake)
    return fake


def page(client: Client, provider: AuthProvider) -> str:
    return text(client.get(f"{BASE}/{provider.adapter}/{provider.pk}"))


def sync_url(provider: AuthProvider) -> str:
    return f"{BASE}/{provider.adapter}/{provider.pk}/sync"


def test_sync_now_runs_the_sync_and_the_page_shows_it(
    client: Client, acme: Acme, directory: FakeDirectory
) -> None:
    google = sync_provider(acme)
    body = page(client, google)
    assert "Never synced" in body and ERROR_BOX not in body
    assert f'action="{sync_url(google)}"' in body and ">Sync now</button>" in body
    response = client.post(sync_url(google))
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}/google_workspace/{google.pk}"
    assert flash(response) == MSG_SYNC_QUEUED
    # Eager Celery in tests: the run happened during the request.
    assert directory.reads == 1
    google.refresh_from_db()
    assert google.last_synced_at is not None
    body = page(client, google)
    # The fake directory: one user in one group.
    assert re.search(r"Synced <a [^>]+>1 identity</a> and <a [^>]+>1 group</a>", body)
    assert "status-online sync-status" in body
    assert "Never synced" not in body


def test_page_shows_failures_and_paused_sync(
    client: Client, acme: Acme, directory: FakeDirectory
) -> None:
    google = sync_provider(acme, last_synced_at=timezone.now())
    directory.error = SyncUnauthorized("Invalid Credentials")
    client.post(sync_url(google))
    google.refresh_from_db()
    assert google.sync_disabled_at is not None
    (message,) = mail.outbox
    assert message.to == ["admin@acme.test"]
    body = page(client, google)
    # §2.7: no "Never synced" once it failed; the error box says why; no button while paused.
    assert "Never synced" not in body
    assert ERROR_BOX in body and "Invalid Credentials" in body
    assert ">Sync now</button>" not in body
    response = client.post(sync_url(google))
    assert flash(response) == MSG_SYNC_PAUSED
    assert directory.reads == 1


def test_red_dot_after_more_than_three_failures(client: Client, acme: Acme) -> None:
    google = sync_provider(
        acme, last_synced_at=timezone.now(), last_syncs_failed=4, last_sync_error="Quota"
    )
    body = page(client, google)
    assert "status-offline sync-status" in body and ERROR_BOX in body and "Quota" in body
    AuthProvider.objects.filter(pk=google.pk).update(last_syncs_failed=3)
    body = page(client, google)
    assert "status-online sync-status" in body and ERROR_BOX not in body


def test_disabled_provider_is_refused(client: Client, acme: Acme, directory: FakeDirectory) -> None:
    google = sync_provider(acme, disabled_at=timezone.now())
    assert ">Sync now</button>" not in page(client, google)
    assert flash(client.post(sync_url(google))) == MSG_PROVIDER_DISABLED
    assert directory.reads == 0


def test_only_admins_post_with_csrf(acme: Acme, directory: FakeDirectory) -> None:
    google = sync_provider(acme)
    user = ActorFactory(account=acme.account, name="User")
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    member = Client(HTTP_USER_AGENT=UA)
    inject_session(member, identity)
    response = member.post(sync_url(google))
    assert response.status_code == 404 and NOT_FOUND in text(response)
    anonymous = Client(HTTP_USER_AGENT=UA).post(sync_url(google))
    assert anonymous.status_code == 302 and anonymous["Location"] == "/acme"
    strict = Client(HTTP_USER_AGENT=UA, enforce_csrf_checks=True)
    inject_session(strict, acme.admin_identity)
    assert strict.post(sync_url(google)).status_code == 403
    assert directory.reads == 0
    # With the page's token the same client may.
    strict.get(f"{BASE}/google_workspace/{google.pk}")
    token = strict.cookies["csrftoken"].value
    response = strict.post(sync_url(google), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302 and directory.reads == 1


def test_get_and_non_sync_providers(client: Client, acme: Acme) -> None:
    google = sync_provider(acme)
    assert client.get(sync_url(google)).status_code == 405
    vault = oidc_provider(acme, name="Vault")
    assert client.post(sync_url(vault)).status_code == 404
    assert ">Sync now</button>" not in page(client, vault)
    other = Client(HTTP_USER_AGENT=UA)
    assert other.post(f"{BASE}/google_workspace/{vault.pk}/sync").status_code == 302


def test_admin_action_sync_now(acme: Acme, directory: FakeDirectory) -> None:
    google = sync_provider(acme)
    paused = sync_provider(acme, adapter=A.OKTA, name="Okta", sync_disabled_at=timezone.now())
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("staff", "s@example.com", "pw"))
    changelist = reverse("admin:accounts_authprovider_changelist")
    listing = staff.get(changelist)
    assert b"Sync now" in listing.content
    response = staff.post(
        changelist,
        {"action": "sync_now", "_selected_action": [str(google.pk), str(paused.pk)]},
        follow=True,
    )
    body = text(response)
    assert "Directory sync queued for: Google." in body
    assert "Not synced (disabled, not a directory-sync provider" in body and "Okta" in body
    assert directory.reads == 1
    google.refresh_from_db()
    assert google.last_synced_at is not None
    detail = text(staff.get(reverse("admin:accounts_authprovider_change", args=[google.pk])))
    for field in ("Last synced at", "Last sync attempt at", "Last syncs failed", "Last sync error"):
        assert field in detail, field
