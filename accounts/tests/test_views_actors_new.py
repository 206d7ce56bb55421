"""Actor pages (portal.md §4.5), with the Django test client: the "Add Actor" wizard (choose the
type, a new user, adding an identity, a new service account and its token).

Shared fixtures: accounts/tests/_actors.py.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Actor, Token
from accounts.tests._actors import (  # noqa: F401
    SEATS,
    SERVICE_ACCOUNTS,
    _service_account,
    _text,
    acme_fixture,
    client_fixture,
)
from accounts.tests.factories import (
    ActorFactory,
    ProviderFactory,
)
from accounts.tests.portal import Acme

pytestmark = pytest.mark.django_db

# --- choose type ---------------------------------------------------------------------------------


def test_choose_type(client: Client) -> None:
    text = _text(client.get("/acme/actors/new"))
    assert "<title>New Actor · Firezone</title>" in text
    assert "Choose type" in text
    assert "User accounts can sign in to the Firezone Client apps or to the admin portal" in text
    assert "Service accounts are used to authenticate headless Clients" in text
    assert "Next: Actor Details" in text
    response = client.post("/acme/actors/new", {"next": "users"})
    assert response["Location"] == "/acme/actors/users/new"
    response = client.post("/acme/actors/new", {"next": "service_accounts"})
    assert response["Location"] == "/acme/actors/service_accounts/new"
    response = client.post("/acme/actors/new", {})
    assert response.status_code == 200 and "can&#x27;t be blank" in _text(response)


# --- new user ------------------------------------------------------------------------------------


def test_new_user_form(client: Client) -> None:
    text = _text(client.get("/acme/actors/users/new"))
    assert "<title>New User · Firezone</title>" in text
    assert "Full Name" in text and 'placeholder="E.g. John Smith"' in text
    assert '<option value="account_user" selected>User</option>' in text
    assert '<option value="account_admin_user">Admin</option>' in text
    assert "<strong>Admin</strong> grants full access to the admin portal" in text
    assert "Next: Add an Identity" in text


def test_new_user_validation(client: Client) -> None:
    response = client.post("/acme/actors/users/new", {"name": "  ", "type": "account_user"})
    assert response.status_code == 200 and "can&#x27;t be blank" in _text(response)
    response = client.post("/acme/actors/users/new", {"name": "x" * 300, "type": "account_user"})
    assert "should be at most 255 character(s)" in _text(response)
    response = client.post("/acme/actors/users/new", {"name": "Jane", "type": "service_account"})
    assert "Select a valid choice" in _text(response)


def test_new_user_success(client: Client, acme: Acme) -> None:
    response = client.post(
        "/acme/actors/users/new", {"name": " Jane ", "type": "account_admin_user"}
    )
    jane = Actor.objects.get(account=acme.account, name="Jane")
    assert jane.type == "account_admin_user"
    assert (
        response["Location"] == f"/acme/actors/users/{jane.pk}/new_identity?next_step=edit_groups"
    )


@pytest.mark.parametrize(
    "limits",
    [{"users_count": 1}, {"monthly_active_users_count": 0}, {"account_admin_users_count": 1}],
)
def test_new_user_limits(client: Client, acme: Acme, limits: dict[str, int]) -> None:
    acme.account.limits = limits
    acme.account.save()
    response = client.post("/acme/actors/users/new", {"name": "Jane", "type": "account_admin_user"})
    assert response.status_code == 200
    assert SEATS in _text(response)
    assert not Actor.objects.filter(name="Jane").exists()


def test_new_user_refused_for_disabled_account(client: Client, acme: Acme) -> None:
    acme.account.disabled_at = timezone.now()
    acme.account.save()
    response = client.post("/acme/actors/users/new", {"name": "Jane", "type": "account_user"})
    assert SEATS in _text(response)


# --- add identity --------------------------------------------------------------------------------


def test_new_identity_form_for_email(client: Client, acme: Acme) -> None:
    jane = ActorFactory(account=acme.account, name="Jane")
    text = _text(client.get(f"/acme/actors/users/{jane.pk}/new_identity?next_step=edit_groups"))
    assert "<title>New User Identity · Firezone</title>" in text
    assert f'<a href="/acme/actors/{jane.pk}">Jane</a>' in text and "Add Identity" in text
    assert "Identity Provider" in text and "Email (Email)" in text
    assert 'placeholder="Enter an email address"' in text
    assert 'placeholder="Enter the same email as above"' in text
    assert "Next: Select Group Memberships" in text
    text = _text(client.get(f"/acme/actors/users/{jane.pk}/new_identity"))
    assert "Create Identity" in text


@pytest.mark.parametrize(
    ("email", "confirmation", "message"),
    [
        ("", "", "can&#x27;t be blank"),
        ("jane@acme.test", "jone@acme.test", "email does not match"),
        ("not-an-email", "not-an-email", "is an invalid email address"),
        ("admin@acme.test", "admin@acme.test", "has already been taken"),
    ],
)
def test_new_identity_validation(
    client: Client, acme: Acme, email: str, confirmation: str, message: str
) -> None:
    jane = ActorFactory(account=acme.account, name="Jane")
    response = client.post(
        f"/acme/actors/users/{jane.pk}/new_identity?next_step=edit_groups",
        {
            "provider_id": str(acme.email_provider.pk),
            "provider_identifier": email,
            "provider_identifier_confirmation": confirmation,
        },
    )
    assert response.status_code == 200
    assert message in _text(response)
    assert not jane.identities.exists()
    assert not mail.outbox


def test_new_identity_email_sends_welcome(client: Client, acme: Acme, settings: Any) -> None:
    settings.EXTERNAL_URL = "https://portal.test"
    jane = ActorFactory(account=acme.account, name="Jane")
    response = client.post(
        f"/acme/actors/users/{jane.pk}/new_identity?next_step=edit_groups",
        {
            "provider_id": str(acme.email_provider.pk),
            "provider_identifier": "jane@acme.test",
            "provider_identifier_confirmation": "JANE@acme.test",
        },
    )
    assert response["Location"] == f"/acme/actors/{jane.pk}/edit_groups"
    identity = jane.identities.get()
    assert identity.provider_identifier == "jane@acme.test"
    assert identity.created_by == "identity"
    (message,) = mail.outbox
    assert message.subject == "Welcome to Firezone" and message.to == ["jane@acme.test"]
    assert "Admin invited you to the following Firezone Account: Acme" in message.body
    assert "account slug: acme" in message.body
    for platform in ("macOS", "iOS", "Windows", "Android", "Linux"):
        assert f"{platform}: https://www.firezone.dev/kb/client-apps/" in message.body
    assert "https://portal.test/acme" in message.body


def test_new_identity_without_wizard_goes_to_actor(client: Client, acme: Acme) -> None:
    jane = ActorFactory(account=acme.account, name="Jane")
    response = client.post(
        f"/acme/actors/users/{jane.pk}/new_identity",
        {
            "provider_id": str(acme.email_provider.pk),
            "provider_identifier": "jane@acme.test",
            "provider_identifier_confirmation": "jane@acme.test",
        },
    )
    assert response["Location"] == f"/acme/actors/{jane.pk}"


def test_new_identity_userpass_and_oidc(client: Client, acme: Acme) -> None:
    userpass = ProviderFactory(account=acme.account, userpass=True)
    oidc = ProviderFactory(account=acme.account, oidc=True, name="Vault")
    jane = ActorFactory(account=acme.account, name="Jane")
    path = f"/acme/actors/users/{jane.pk}/new_identity"

    text = _text(client.get(path, {"provider_id": str(userpass.pk)}))
    assert "UserPass (Username &amp; Password)" in text
    assert ">Username</label>" in text and ">Password Confirmation</label>" in text
    assert "Email Confirmation" not in text
    response = client.post(
        path,
        {
            "provider_id": str(userpass.pk),
            "provider_identifier": "jane@acme.test",
            "password": "Firezone1234",
            "password_confirmation": "Firezone9999",
        },
    )
    assert "does not match confirmation" in _text(response)
    response = client.post(
        path,
        {
            "provider_id": str(userpass.pk),
            "provider_identifier": "jane@acme.test",
            "password": "Firezone1234",
            "password_confirmation": "Firezone1234",
        },
    )
    assert response.status_code == 302
    assert jane.identities.get().provider_state["password_hash"].startswith("$argon2id$")
    assert not mail.outbox  # only email identities get the invitation

    text = _text(client.get(path, {"provider_id": str(oidc.pk)}))
    assert "Vault (OpenID Connect)" in text
    assert "The token `sub` claim value or userinfo `email` value." in text
    # The userpass provider now holds Jane's identity: no longer offered.
    assert "UserPass (Username &amp; Password)" not in text
    response = client.post(
        path,
        {
            "provider_id": str(oidc.pk),
            "provider_identifier": "jane@acme.test",
            "provider_identifier_confirmation": "other@acme.test",
        },
    )
    assert "email does not match" in _text(response)


def test_new_identity_select_provider_without_js(client: Client, acme: Acme) -> None:
    userpass = ProviderFactory(account=acme.account, userpass=True)
    jane = ActorFactory(account=acme.account, name="Jane")
    response = client.post(
        f"/acme/actors/users/{jane.pk}/new_identity",
        {"provider_id": str(userpass.pk), "action": "select_provider"},
    )
    text = _text(response)
    assert response.status_code == 200 and ">Username</label>" in text
    assert "can&#x27;t be blank" not in text


def test_new_identity_skips_disabled_and_sync_providers(client: Client, acme: Acme) -> None:
    ProviderFactory(account=acme.account, userpass=True, disabled_at=timezone.now())
    ProviderFactory(account=acme.account, adapter="google_workspace", name="Google")
    jane = ActorFactory(account=acme.account, name="Jane")
    text = _text(client.get(f"/acme/actors/users/{jane.pk}/new_identity"))
    assert "UserPass" not in text and "Google" not in text
    # No provider left for the admin (the email one holds their identity).
    text = _text(client.get(f"/acme/actors/users/{acme.admin.pk}/new_identity"))
    assert "already has an identity at every identity provider" in text


# --- new service account and its token ----------------------------------------------------------


def test_new_service_account(client: Client, acme: Acme) -> None:
    text = _text(client.get("/acme/actors/service_accounts/new"))
    assert "<title>New Service Account · Firezone</title>" in text
    assert 'placeholder="E.g. My Backend Service"' in text and "Next: Create Token" in text
    response = client.post("/acme/actors/service_accounts/new", {"name": ""})
    assert "can&#x27;t be blank" in _text(response)
    response = client.post("/acme/actors/service_accounts/new", {"name": "Backend"})
    sa = Actor.objects.get(account=acme.account, name="Backend")
    assert sa.type == "service_account"
    assert response["Location"] == f"/acme/actors/service_accounts/{sa.pk}/new_identity"


def test_new_service_account_limit(client: Client, acme: Acme) -> None:
    acme.account.limits = {"service_accounts_count": 0}
    acme.account.save()
    response = client.post("/acme/actors/service_accounts/new", {"name": "Backend"})
    assert response.status_code == 200 and SERVICE_ACCOUNTS in _text(response)


def test_service_account_token(client: Client, acme: Acme) -> None:
    sa = _service_account(acme)
    path = f"/acme/actors/service_accounts/{sa.pk}/new_identity"
    text = _text(client.get(path))
    today = timezone.now().astimezone(UTC).date()
    assert "<title>New Service Account Token · Firezone</title>" in text
    assert "Create Token" in text and 'placeholder="Name for this token"' in text
    assert f'value="{(today + timedelta(days=365)).isoformat()}"' in text
    assert f'min="{today.isoformat()}"' in text

    response = client.post(path, {"name": "", "expires_at": today.isoformat()})
    text = _text(response)
    assert "can&#x27;t be blank" in text and "must be greater than" in text
    assert not Token.objects.filter(actor=sa).exists()

    expiry = today + timedelta(days=30)
    response = client.post(path, {"name": "ci", "expires_at": expiry.isoformat()})
    text = _text(response)
    assert "Your Service Account token" in text
    assert "Store this in a safe place. <strong>It won't be shown again.</strong>" in text
    assert "Back to Service Account" in text
    token = Token.objects.get(actor=sa)
    assert token.type == "client" and token.name == "ci" and token.identity_id is None
    assert token.expires_at is not None
    assert token.expires_at.astimezone(UTC).date() == expiry
    assert token.expires_at.astimezone(UTC).hour == 0
    assert response["Cache-Control"] == "no-store"


def test_service_account_token_refused_for_disabled_actor(client: Client, acme: Acme) -> None:
    sa = ActorFactory(account=acme.account, service_account=True, disabled_at=timezone.now())
    expiry = timezone.now().date() + timedelta(days=3)
    response = client.post(
        f"/acme/actors/service_accounts/{sa.pk}/new_identity",
        {"name": "ci", "expires_at": expiry.isoformat()},
    )
    assert response.status_code == 200 and "Actor is disabled" in _text(response)
