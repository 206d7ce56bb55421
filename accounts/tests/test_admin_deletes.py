"""Staff admin writes go through the change log (firezone.web.admin.ChangeLoggedAdmin): deletes
record every cascaded row and disconnect the deleted tokens' sessions; edits record updates."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import Account, Actor, Token
from firezone import changes
from firezone.models import ChangeLog
from gateways.models import Client
from tests._schema import make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: HttpClient) -> HttpClient:
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def _deleted(table: str) -> set[str]:
    rows = ChangeLog.objects.filter(table=table, op="delete")
    return {str(row.old_data["id"]) for row in rows if row.old_data}


def _listen(token_id: object) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(changes.session_group(token_id), channel)
    return channel


def _received(channel: str) -> dict:
    return async_to_sync(get_channel_layer().receive)(channel)


def test_deleting_a_token_records_it_and_disconnects_its_sessions(
    staff: HttpClient, django_capture_on_commit_callbacks
) -> None:
    world = make_world()
    channel = _listen(world.token.pk)
    url = reverse("admin:accounts_token_delete", args=[world.token.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert staff.post(url, {"post": "yes"}).status_code == 302
    assert not Token.objects.filter(pk=world.token.pk).exists()
    assert _deleted("tokens") == {str(world.token.pk)}
    assert _received(channel) == {"type": "session.disconnect"}


def test_bulk_delete_of_tokens_records_each_and_disconnects(
    staff: HttpClient, django_capture_on_commit_callbacks
) -> None:
    world = make_world()
    other = Token.objects.create(
        account=world.account,
        type=Token.Type.BROWSER,
        actor=world.actor,
        identity=world.identity,
        secret_salt="s2",
        secret_hash="h2",
        created_by="system",
        created_by_subject={"name": "System", "email": None},
    )
    channels = [_listen(world.token.pk), _listen(other.pk)]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            reverse("admin:accounts_token_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [str(world.token.pk), str(other.pk)],
                "post": "yes",
            },
        )
    assert response.status_code == 302
    assert not Token.objects.filter(account=world.account).exists()
    assert _deleted("tokens") == {str(world.token.pk), str(other.pk)}
    for channel in channels:
        assert _received(channel) == {"type": "session.disconnect"}


def test_deleting_an_actor_records_the_cascade(staff: HttpClient) -> None:
    world = make_world()
    url = reverse("admin:accounts_actor_delete", args=[world.actor.pk])
    assert staff.post(url, {"post": "yes"}).status_code == 302
    assert not Actor.objects.filter(pk=world.actor.pk).exists()
    assert _deleted("actors") == {str(world.actor.pk)}
    assert _deleted("tokens") == {str(world.token.pk)}
    assert _deleted("clients") == {str(world.client.pk)}
    assert _deleted("auth_identities") == {str(world.identity.pk)}
    assert _deleted("actor_group_memberships") == {str(world.membership.pk)}


def test_deleting_a_client_is_published(
    staff: HttpClient, django_capture_on_commit_callbacks
) -> None:
    world = make_world()
    url = reverse("admin:gateways_client_delete", args=[world.client.pk])
    with django_capture_on_commit_callbacks() as callbacks:
        assert staff.post(url, {"post": "yes"}).status_code == 302
    assert not Client.objects.filter(pk=world.client.pk).exists()
    assert _deleted("clients") == {str(world.client.pk)}
    assert callbacks  # the deletion is published after commit (the client's socket closes)


def test_bulk_delete_of_clients(staff: HttpClient) -> None:
    world = make_world()
    response = staff.post(
        reverse("admin:gateways_client_changelist"),
        {"action": "delete_selected", "_selected_action": [str(world.client.pk)], "post": "yes"},
    )
    assert response.status_code == 302
    assert _deleted("clients") == {str(world.client.pk)}


def test_deleting_a_disabled_account_records_everything(staff: HttpClient) -> None:
    world = make_world()
    Account.objects.filter(pk=world.account.pk).update(disabled_at="2025-01-01T00:00:00Z")
    url = reverse("admin:accounts_account_delete", args=[world.account.pk])
    assert staff.post(url, {"post": "yes"}).status_code == 302
    assert not Account.objects.filter(pk=world.account.pk).exists()
    assert _deleted("accounts") == {str(world.account.pk)}
    assert _deleted("tokens") == {str(world.token.pk)}
    assert _deleted("gateways") == {str(world.gateway.pk)}
    assert _deleted("clients") == {str(world.client.pk)}


def test_editing_records_an_update(staff: HttpClient) -> None:
    world = make_world()
    url = reverse("admin:gateways_client_change", args=[world.client.pk])
    assert staff.post(url, {"name": "renamed"}).status_code == 302
    row = ChangeLog.objects.get(table="clients", op="update")
    assert row.old_data is not None and row.data is not None
    assert (row.old_data["name"], row.data["name"]) == ("laptop", "renamed")


def test_fields_needing_a_service_are_read_only(staff: HttpClient) -> None:
    world = make_world()
    page = staff.get(reverse("admin:accounts_actor_change", args=[world.actor.pk]))
    assert 'name="disabled_at' not in page.content.decode()
    page = staff.get(reverse("admin:accounts_token_change", args=[world.token.pk]))
    assert 'name="expires_at' not in page.content.decode()
