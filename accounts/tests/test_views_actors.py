"""Actor pages (portal.md §4.5): list, the "Add Actor" wizard, the actor page and its events, the
edit pages, with the Django test client."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Actor, ActorGroupMembership, AuthIdentity, Token
from accounts.services.tokens_admin import service_account_token_create
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    ProviderFactory,
    everyone_group,
    subject_for,
    synced_group,
)
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from accounts.views.actors.detail import WELCOME_EMAILS_PER_IDENTITY
from gateways.tests.factories import ClientFactory, flow_for

pytestmark = pytest.mark.django_db

SEATS = "You have reached the maximum number of seats allowed by your subscription plan."
SERVICE_ACCOUNTS = (
    "You have reached the maximum number of service accounts allowed by your subscription plan."
)


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return response.content.decode()


def _user(acme: Acme, name: str = "Jane", *, admin: bool = False, email: str = "") -> Actor:
    actor = ActorFactory(account=acme.account, name=name, admin=admin)
    IdentityFactory(
        actor=actor,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier=email or f"{name.lower()}@acme.test",
    )
    return actor


def _service_account(acme: Acme, name: str = "Backend") -> Actor:
    return ActorFactory(account=acme.account, name=name, service_account=True)


def _sa_token(acme: Acme, actor: Actor, name: str = "ci") -> Token:
    subject = subject_for(acme.admin, identity=acme.admin_identity)
    issued = service_account_token_create(subject=subject, actor=actor, name=name)
    return Token.objects.get(pk=issued.token.pk)


def _client_token(actor: Actor) -> Token:
    return Token.objects.create(
        type="client",
        actor=actor,
        identity=actor.identities.first(),
        account=actor.account,
        secret_salt="salt",
        secret_hash="hash",
        created_by="system",
        expires_at=timezone.now() + timedelta(days=7),
    )


# --- access --------------------------------------------------------------------------------------


def _all_urls(acme: Acme, actor: Actor, sa: Actor) -> list[str]:
    return [
        "/acme/actors",
        "/acme/actors/new",
        "/acme/actors/users/new",
        f"/acme/actors/users/{actor.pk}/new_identity",
        "/acme/actors/service_accounts/new",
        f"/acme/actors/service_accounts/{sa.pk}/new_identity",
        f"/acme/actors/{actor.pk}",
        f"/acme/actors/{actor.pk}/edit",
        f"/acme/actors/{actor.pk}/edit_groups",
    ]


def test_regular_user_gets_404_everywhere(acme: Acme) -> None:
    user = _user(acme, "Joe")
    sa = _service_account(acme)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, user.identities.get())
    for path in _all_urls(acme, user, sa):
        response = c.get(path)
        assert response.status_code == 404, path
        assert "Sorry, we couldn't find this page." in _text(response)


def test_signed_out_is_sent_to_sign_in(acme: Acme) -> None:
    response = Client(HTTP_USER_AGENT=UA).get("/acme/actors")
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


def test_other_accounts_actor_is_404(client: Client, acme: Acme) -> None:
    other = AccountFactory()
    foreign = ActorFactory(account=other, name="Foreign")
    foreign_sa = ActorFactory(account=other, service_account=True)
    paths = [
        f"/acme/actors/users/{foreign.pk}/new_identity",
        f"/acme/actors/service_accounts/{foreign_sa.pk}/new_identity",
        f"/acme/actors/{foreign.pk}",
        f"/acme/actors/{foreign.pk}/edit",
        f"/acme/actors/{foreign.pk}/edit_groups",
    ]
    for path in paths:
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"action": "delete"}).status_code == 404, path
    assert Actor.objects.filter(pk=foreign.pk).exists()


@pytest.mark.parametrize("bad", ["nope", "123", str(uuid.uuid4())])
def test_malformed_or_unknown_id_is_404(client: Client, bad: str) -> None:
    for suffix in ("", "/edit", "/edit_groups"):
        assert client.get(f"/acme/actors/{bad}{suffix}").status_code == 404
    assert client.get(f"/acme/actors/users/{bad}/new_identity").status_code == 404
    assert client.get(f"/acme/actors/service_accounts/{bad}/new_identity").status_code == 404


def test_wrong_kind_of_actor_is_404(client: Client, acme: Acme) -> None:
    sa = _service_account(acme)
    api = ActorFactory(account=acme.account, api_client=True)
    assert client.get(f"/acme/actors/users/{sa.pk}/new_identity").status_code == 404
    assert client.get(f"/acme/actors/users/{api.pk}/new_identity").status_code == 404
    assert (
        client.get(f"/acme/actors/service_accounts/{acme.admin.pk}/new_identity").status_code == 404
    )
    assert client.get(f"/acme/actors/{api.pk}/edit").status_code == 404
    # API clients have their page under Settings.
    response = client.get(f"/acme/actors/{api.pk}")
    assert response.status_code == 302
    assert response["Location"] == f"/acme/settings/api_clients/{api.pk}"


# --- list ----------------------------------------------------------------------------------------


def test_list_renders_rows(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    group = GroupFactory(account=acme.account, name="Eng")
    MembershipFactory(group=group, actor=jane)
    ClientFactory(actor=jane, name="jane-laptop")
    sa = _service_account(acme, "Backend")
    api = ActorFactory(account=acme.account, api_client=True, name="Terraform")
    disabled = ActorFactory(account=acme.account, name="Gone", disabled_at=timezone.now())

    response = client.get("/acme/actors")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Actors · Firezone</title>" in text
    assert "Actors are the people and services that can access your Resources." in text
    assert 'href="/acme/actors/new"' in text and "Add Actor" in text
    assert "https://www.firezone.dev/kb/deploy/users?utm_source=product" in text
    assert f'id="user-{acme.admin.pk}"' in text and "Admin</a> (admin)" in text
    assert f'id="user-{jane.pk}"' in text and "jane@acme.test" in text
    assert f'href="/acme/actors/{jane.pk}#groups" title="Eng">1</a>' in text
    assert "jane-laptop" in text
    assert "Backend</a> (service account)" in text
    assert f'href="/acme/settings/api_clients/{api.pk}">Terraform</a> (api client)' in text
    assert f'id="user-{disabled.pk}"' in text and "Disabled" in text
    assert f'id="user-{sa.pk}"' in text
    assert "Search by Name or Email" in text
    assert "For any Provider" in text
    assert "Never" in text


def test_list_filters(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane", email="jane@corp.test")
    bob = ActorFactory(account=acme.account, name="Bob", disabled_at=timezone.now())
    oidc = ProviderFactory(account=acme.account, oidc=True, name="Vault")
    IdentityFactory(actor=bob, account=acme.account, provider=oidc, provider_identifier="bob-sub")

    text = _text(client.get("/acme/actors", {"actors_filter[name_or_email]": "corp.test"}))
    assert f"user-{jane.pk}" in text and f"user-{bob.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[name_or_email]": "bob"}))
    assert f"user-{bob.pk}" in text and f"user-{jane.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[provider_id]": str(oidc.pk)}))
    assert f"user-{bob.pk}" in text and f"user-{jane.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[status]": "disabled"}))
    assert f"user-{bob.pk}" in text and f"user-{jane.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[status]": "active"}))
    assert f"user-{jane.pk}" in text and f"user-{bob.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[name_or_email]": "zzz"}))
    assert "There are no results matching your filters." in text


def test_list_bad_filter_resets(client: Client, acme: Acme) -> None:
    response = client.get("/acme/actors", {"actors_filter[provider_id]": str(uuid.uuid4())})
    assert response.status_code == 302 and response["Location"] == "/acme/actors"
    follow = client.get(response["Location"])
    assert "The page was reset due to invalid value of a pagination filter." in _text(follow)


def test_list_sorts_by_name(client: Client, acme: Acme) -> None:
    _user(acme, "Zed")
    _user(acme, "Amy")
    text = _text(client.get("/acme/actors", {"actors_order_by": "actors:asc:name"}))
    assert text.index(">Admin<") < text.index(">Amy<") < text.index(">Zed<")


def _populate(acme: Acme, n: int, start: int = 0) -> None:
    group = GroupFactory(account=acme.account)
    for i in range(start, start + n):
        actor = _user(acme, f"User{i:03d}")
        MembershipFactory(group=group, actor=actor)
        ClientFactory(actor=actor)


def _count_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    _populate(acme, 1)
    client.get("/acme/actors")  # warm the session
    few = _count_queries(client, "/acme/actors")
    _populate(acme, 50, start=1)
    many = _count_queries(client, "/acme/actors")
    assert few == many


def test_detail_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    client.get(f"/acme/actors/{jane.pk}")
    few = _count_queries(client, f"/acme/actors/{jane.pk}")
    for _ in range(12):
        flow_for(ClientFactory(actor=jane))  # a client, a flow and a group membership
        _client_token(jane)
    many = _count_queries(client, f"/acme/actors/{jane.pk}")
    assert few == many


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


# --- actor page ----------------------------------------------------------------------------------


def test_detail_of_user(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    group = GroupFactory(account=acme.account, name="Eng")
    MembershipFactory(group=group, actor=jane)
    device = ClientFactory(actor=jane, name="jane-laptop")
    flow_for(device)
    response = client.get(f"/acme/actors/{jane.pk}")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Actor Jane · Firezone</title>" in text
    assert "User: <strong>Jane</strong>" in text and "(you)" not in text
    assert "Edit User" in text and "Disable User" in text and "Delete User" in text
    assert "Confirm disabling the Actor" in text
    assert "Are you sure you want to disable this user and revoke all its tokens?" in text
    assert "<tr><th>Role</th><td>user</td></tr>" in text
    assert "Authentication Identities" in text and "Add Identity" not in text
    identity = jane.identities.get()
    assert f'id="identity-{identity.pk}"' in text and "Send Welcome Email" in text
    assert "Confirm Identity deletion" in text
    assert "Authentication Tokens" in text and "Revoke All" in text
    (token,) = Token.objects.filter(actor=jane)  # the flow's client token
    assert f'id="tokens-{token.pk}"' in text and "Confirm token revocation" in text
    assert "Create Token" not in text
    assert f'id="clients-{device.pk}"' in text and "jane-laptop" in text and "Offline" in text
    assert f'data-live-topics="actor_clients:{jane.pk}"' in text
    assert "Recent Connections" in text and "flows-" in text
    assert f'href="/acme/actors/{jane.pk}/edit_groups"' in text
    assert f'href="/acme/groups/{group.pk}">Eng</a>' in text
    assert "Confirm User deletion" in text
    assert "Are you sure you want to delete this user along with all associated identities?" in text


def test_detail_of_self_and_profile_link(client: Client, acme: Acme) -> None:
    text = _text(client.get(f"/acme/actors/{acme.admin.pk}"))
    assert 'User: <strong>Admin</strong> <span class="muted">(you)</span>' in text
    assert f'href="/acme/actors/{acme.admin.pk}">Profile</a>' in text
    assert "<tr><th>Role</th><td>admin</td></tr>" in text
    # The admin's own browser session is listed with its identity.
    assert "browser" in text and "admin@acme.test" in text


def test_detail_of_service_account(client: Client, acme: Acme) -> None:
    sa = _service_account(acme, "Backend")
    token = _sa_token(acme, sa, "ci-token")
    text = _text(client.get(f"/acme/actors/{sa.pk}"))
    assert "Service Account: <strong>Backend</strong>" in text
    assert "Edit Service Account" in text and "Disable Service Account" in text
    assert "Authentication Identities" not in text
    assert "Create Token" in text
    assert f'href="/acme/actors/service_accounts/{sa.pk}/new_identity"' in text
    assert f'id="tokens-{token.pk}"' in text and "ci-token" in text
    assert "<tr><th>Role</th><td>service account</td></tr>" in text
    assert "Actor has not signed in from any Client." in text
    assert "No Groups to display." in text


def test_detail_of_synced_actor(client: Client, acme: Acme) -> None:
    synced = ActorFactory(account=acme.account, name="Synced", last_synced_at=timezone.now())
    oidc = ProviderFactory(account=acme.account, oidc=True)
    identity = IdentityFactory(
        actor=synced, account=acme.account, provider=oidc, created_by="provider", email=None
    )
    text = _text(client.get(f"/acme/actors/{synced.pk}"))
    assert "Last Synced At" in text
    assert "Delete User" not in text  # still has an identity
    assert f"delete-identity-{identity.pk}" not in text  # synced identities stay
    assert "Send Welcome Email" not in text  # no email
    response = client.post(f"/acme/actors/{synced.pk}", {"action": "delete"})
    assert Actor.objects.filter(pk=synced.pk).exists()
    assert response.status_code == 302


def test_disable_and_enable(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    ClientFactory(actor=jane)
    _client_token(jane)
    path = f"/acme/actors/{jane.pk}"
    response = client.post(path, {"action": "disable"}, follow=True)
    assert "Actor was disabled." in _text(response)
    jane.refresh_from_db()
    assert jane.disabled_at is not None and not Token.objects.filter(actor=jane).exists()
    text = _text(response)
    assert "(disabled)" in text and "Enable User" in text
    assert "Are you sure you want to enable this user?" in text
    response = client.post(path, {"action": "enable"}, follow=True)
    assert "Actor was enabled." in _text(response)
    jane.refresh_from_db()
    assert jane.disabled_at is None


def test_last_admin_guards(client: Client, acme: Acme) -> None:
    path = f"/acme/actors/{acme.admin.pk}"
    response = client.post(path, {"action": "disable"}, follow=True)
    assert "You can&#x27;t disable the last admin of an account." in _text(response)
    response = client.post(path, {"action": "delete"}, follow=True)
    assert "You can&#x27;t delete the last admin of an account." in _text(response)
    response = client.post(f"{path}/edit", {"name": "Admin", "type": "account_user"})
    assert response.status_code == 200
    assert "You may not demote the last admin." in _text(response)
    acme.admin.refresh_from_db()
    assert acme.admin.type == "account_admin_user" and acme.admin.disabled_at is None


def test_delete_actor(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    response = client.post(f"/acme/actors/{jane.pk}", {"action": "delete"})
    assert response["Location"] == "/acme/actors"
    assert not Actor.objects.filter(pk=jane.pk).exists()


def test_send_welcome_email_and_rate_limit(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    identity = jane.identities.get()
    WELCOME_EMAILS_PER_IDENTITY.reset(identity.pk)
    path = f"/acme/actors/{jane.pk}"
    data = {"action": "send_welcome_email", "identity_id": str(identity.pk)}
    for _ in range(3):
        response = client.post(path, data, follow=True)
        assert "Welcome email sent to jane@acme.test" in _text(response)
    response = client.post(path, data, follow=True)
    assert "You sent too many welcome emails to this address. Please try again later." in _text(
        response
    )
    assert len(mail.outbox) == 3
    assert all(m.subject == "Welcome to Firezone" for m in mail.outbox)


def test_send_welcome_email_failure(client: Client, acme: Acme, monkeypatch: Any) -> None:
    jane = _user(acme, "Jane")
    identity = jane.identities.get()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", boom)
    response = client.post(
        f"/acme/actors/{jane.pk}",
        {"action": "send_welcome_email", "identity_id": str(identity.pk)},
        follow=True,
    )
    assert "Unknown error while sending welcome email. We&#x27;re looking into it." in _text(
        response
    )


def test_delete_identity(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    identity = jane.identities.get()
    response = client.post(
        f"/acme/actors/{jane.pk}",
        {"action": "delete_identity", "identity_id": str(identity.pk)},
        follow=True,
    )
    text = _text(response)
    assert "Identity was deleted." in text
    assert not AuthIdentity.objects.filter(pk=identity.pk).exists()
    assert "No authentication identities to display." in text
    assert "Add Identity" in text


def test_revoke_token_and_all(client: Client, acme: Acme) -> None:
    sa = _service_account(acme)
    one, *_rest = (_sa_token(acme, sa, name) for name in ("a", "b", "c"))
    path = f"/acme/actors/{sa.pk}"
    response = client.post(path, {"action": "revoke_token", "token_id": str(one.pk)}, follow=True)
    text = _text(response)
    assert "Token was revoked." in text and f"tokens-{one.pk}" not in text
    response = client.post(path, {"action": "revoke_all"}, follow=True)
    assert "2 token(s) were revoked." in _text(response)
    assert not Token.objects.filter(actor=sa).exists()


def test_events_with_foreign_ids_are_404(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    bob = _user(acme, "Bob")
    other = _user(make_acme_other(), "Eve")
    bob_identity = bob.identities.get()
    sa = _service_account(acme)
    token = _sa_token(acme, sa)
    path = f"/acme/actors/{jane.pk}"
    for data in (
        {"action": "delete_identity", "identity_id": str(bob_identity.pk)},
        {"action": "send_welcome_email", "identity_id": str(bob_identity.pk)},
        {"action": "delete_identity", "identity_id": str(other.identities.get().pk)},
        {"action": "delete_identity", "identity_id": "garbage"},
        {"action": "revoke_token", "token_id": str(token.pk)},
        {"action": "revoke_token", "token_id": "garbage"},
    ):
        assert client.post(path, data).status_code == 404, data
    assert AuthIdentity.objects.filter(pk=bob_identity.pk).exists()
    assert Token.objects.filter(pk=token.pk).exists()


def make_acme_other() -> Acme:
    account = AccountFactory(name="Other")
    provider = ProviderFactory(account=account)
    admin = ActorFactory(account=account, admin=True)
    identity = IdentityFactory(actor=admin, account=account, provider=provider)
    return Acme(account, provider, admin, identity)


# --- edit ----------------------------------------------------------------------------------------


def test_edit_user(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    path = f"/acme/actors/{jane.pk}/edit"
    text = _text(client.get(path))
    assert "<title>Edit Jane · Firezone</title>" in text
    assert "Edit User: <code>Jane</code>" in text
    assert 'value="Jane"' in text and ">Role</label>" in text
    response = client.post(path, {"name": "", "type": "account_user"})
    assert "can&#x27;t be blank" in _text(response)
    response = client.post(path, {"name": "Jane Doe", "type": "account_admin_user"})
    assert response["Location"] == f"/acme/actors/{jane.pk}"
    jane.refresh_from_db()
    assert jane.name == "Jane Doe" and jane.is_admin
    # Now another admin exists: the first one may be demoted.
    response = client.post(
        f"/acme/actors/{acme.admin.pk}/edit", {"name": "Admin", "type": "account_user"}
    )
    assert response.status_code == 302


def test_edit_service_account_and_synced(client: Client, acme: Acme) -> None:
    sa = _service_account(acme, "Backend")
    text = _text(client.get(f"/acme/actors/{sa.pk}/edit"))
    assert "Edit Service Account: <code>Backend</code>" in text and ">Role</label>" not in text
    response = client.post(f"/acme/actors/{sa.pk}/edit", {"name": "Worker"})
    assert response.status_code == 302
    sa.refresh_from_db()
    assert sa.name == "Worker" and sa.type == "service_account"

    synced = ActorFactory(account=acme.account, name="Synced", last_synced_at=timezone.now())
    text = _text(client.get(f"/acme/actors/{synced.pk}/edit"))
    assert "Full Name" not in text and ">Role</label>" in text
    client.post(f"/acme/actors/{synced.pk}/edit", {"name": "Hacked", "type": "account_user"})
    synced.refresh_from_db()
    assert synced.name == "Synced"


# --- group memberships ---------------------------------------------------------------------------


def test_edit_groups(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    everyone = everyone_group(acme.account)
    MembershipFactory(group=everyone, actor=jane)
    synced = synced_group(acme.account, name="Synced")
    MembershipFactory(group=synced, actor=jane)
    eng = GroupFactory(account=acme.account, name="Eng")
    ops = GroupFactory(account=acme.account, name="Ops")
    MembershipFactory(group=ops, actor=jane)
    path = f"/acme/actors/{jane.pk}/edit_groups"

    text = _text(client.get(path))
    assert "Group Memberships: Jane" in text
    assert "Add or remove Groups for a given Actor." in text
    assert "Note: Users always belong to the default <strong>Everyone</strong> group." in text
    assert f'id="groups-{eng.pk}"' in text and f'id="groups-{ops.pk}"' in text
    assert f"groups-{everyone.pk}" not in text and f"groups-{synced.pk}" not in text
    assert f'href="{path}?add={eng.pk}" id="toggle-group-{eng.pk}">Add</a>' in text
    assert f'href="{path}?remove={ops.pk}" id="toggle-group-{ops.pk}">Remove</a>' in text
    assert "Confirm changes to Actor Groups" not in text

    text = _text(client.get(path, {"add": str(eng.pk), "remove": str(ops.pk)}))
    assert 'class="pending-add"' in text and 'class="pending-remove"' in text
    assert "Confirm changes to Actor Groups" in text
    assert "Are you sure you want to add Eng and remove Ops?" in text
    # Toggling a pending change undoes it.
    assert f'href="{path}?remove={ops.pk}" id="toggle-group-{eng.pk}">Remove</a>' in text

    response = client.post(path, {"action": "save", "add": str(eng.pk), "remove": str(ops.pk)})
    assert response["Location"] == f"/acme/actors/{jane.pk}"
    groups = set(ActorGroupMembership.objects.filter(actor=jane).values_list("group_id", flat=True))
    assert groups == {everyone.pk, synced.pk, eng.pk}


def test_edit_groups_ignores_reserved_groups(client: Client, acme: Acme) -> None:
    sa = _service_account(acme)
    everyone = everyone_group(acme.account)
    path = f"/acme/actors/{sa.pk}/edit_groups"
    text = _text(client.get(path))
    assert "Users always belong" not in text
    response = client.post(path, {"action": "save", "add": f"{everyone.pk},nope"})
    assert response.status_code == 302
    assert not ActorGroupMembership.objects.filter(actor=sa).exists()
