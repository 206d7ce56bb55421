"""Actor pages (portal.md §4.5), with the Django test client: the actor page and its events, the
edit pages and group memberships.

Shared fixtures: accounts/tests/_actors.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Actor, ActorGroupMembership, AuthIdentity, Token
from accounts.tests._actors import (  # noqa: F401
    _client_token,
    _sa_token,
    _service_account,
    _text,
    _user,
    acme_fixture,
    client_fixture,
)
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    ProviderFactory,
    everyone_group,
    synced_group,
)
from accounts.tests.portal import Acme
from accounts.views.actors.detail import WELCOME_EMAILS_PER_IDENTITY
from gateways.tests.factories import ClientFactory, flow_for

pytestmark = pytest.mark.django_db

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
