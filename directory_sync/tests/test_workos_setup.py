"""JumpCloud's "Setup Sync" on the provider page (billing_sync_jobs.md §2.11, scenario 45): the
WorkOS organisation is created (or fetched) and the browser goes to the admin-portal link."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import AuthProvider
from accounts.tests._identity_providers import (  # noqa: F401
    BASE,
    A,
    _settings_fixture,
    acme_fixture,
    client_fixture,
    flash,
    sync_provider,
    text,
)
from accounts.tests.portal import Acme
from directory_sync.tests.fakes import WorkOSFake, fixture, workos_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

LINK = fixture("workos_portal_link")["link"]


def jumpcloud(acme: Acme, workos_org: dict[str, Any] | None = None) -> AuthProvider:
    return sync_provider(
        acme,
        A.JUMPCLOUD,
        name="JC",
        adapter_config={"client_id": "jc", "client_secret": "s", "workos_org": workos_org or {}},
    )


def test_setup_creates_the_organisation_and_redirects_to_the_portal(
    client: Client, acme: Acme, workos: WorkOSFake
) -> None:
    provider = jumpcloud(acme)
    page = f"{BASE}/jumpcloud/{provider.pk}"
    assert "Setup Sync" in text(client.get(page))

    response = client.post(page, {"action": "setup_sync"})

    assert response.status_code == 302 and response["Location"] == LINK
    create, link = workos.requests
    assert (create.method, create.path, create.body["name"]) == (
        "POST",
        "/organizations",
        str(provider.pk),
    )
    provider.refresh_from_db()
    org = provider.adapter_config["workos_org"]
    assert org["id"] == next(iter(workos.organizations))
    assert org["name"] == str(provider.pk)
    assert provider.adapter_config["client_id"] == "jc"  # the rest of the config is kept
    assert (link.method, link.path) == ("POST", "/portal/generate_link")
    assert link.body == {
        "organization": org["id"],
        "intent": "dsync",
        "success_url": f"https://portal.example.com{page}",
    }
    body = text(client.get(page))
    assert "Edit Sync" in body and "Setup Sync" not in body


def test_edit_sync_reuses_the_organisation(client: Client, acme: Acme, workos: WorkOSFake) -> None:
    org = workos.add_organization()
    provider = jumpcloud(acme, workos_org=org)
    response = client.post(f"{BASE}/jumpcloud/{provider.pk}", {"action": "setup_sync"})
    assert response["Location"] == LINK
    assert [(r.method, r.path) for r in workos.requests] == [
        ("GET", f"/organizations/{org['id']}"),
        ("POST", "/portal/generate_link"),
    ]


def test_workos_off(client: Client, acme: Acme, settings: Any) -> None:
    settings.WORKOS_API_KEY = ""
    provider = jumpcloud(acme)
    response = client.post(f"{BASE}/jumpcloud/{provider.pk}", {"action": "setup_sync"})
    assert response["Location"] == f"{BASE}/jumpcloud/{provider.pk}"
    assert (
        flash(response)
        == "Directory sync through WorkOS is not configured for this Firezone deployment."
    )


def test_workos_failure(client: Client, acme: Acme, workos: WorkOSFake) -> None:
    workos.fail("/organizations", 500, {})
    provider = jumpcloud(acme)
    response = client.post(f"{BASE}/jumpcloud/{provider.pk}", {"action": "setup_sync"})
    assert response["Location"] == f"{BASE}/jumpcloud/{provider.pk}"
    assert flash(response) == "Error connecting to WorkOS"
    provider.refresh_from_db()
    assert provider.adapter_config["workos_org"] == {}
