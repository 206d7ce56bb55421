"""A recorded change reaches the account group once, after commit, and never on rollback."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from accounts.models import Account
from firezone import changes, redaction
from firezone.models import ChangeLog


def _listen(account_id) -> tuple:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(changes.account_group(account_id), channel)
    return layer, channel


def _receive_one(layer, channel) -> dict:
    import asyncio

    async def get() -> dict:
        return await asyncio.wait_for(layer.receive(channel), timeout=2)

    return async_to_sync(get)()


@pytest.mark.django_db(transaction=True)
def test_published_once_after_commit_with_the_change_log_row() -> None:
    account = Account.objects.create(name="Acme", legal_name="Acme", slug="acme_changes")
    layer, channel = _listen(account.pk)
    with transaction.atomic():
        change = changes.record(
            op="update", table="accounts", account_id=account.pk, old=account, new=account
        )
    message = _receive_one(layer, channel)
    assert message["type"] == "domain.change"
    assert changes.Change.from_message(message) == change
    assert ChangeLog.objects.filter(lsn=change.lsn, table="accounts").count() == 1
    with pytest.raises(TimeoutError):
        _receive_one(layer, channel)


@pytest.mark.django_db(transaction=True)
def test_nothing_published_or_logged_on_rollback() -> None:
    account_id = uuid.uuid4()
    layer, channel = _listen(account_id)
    with pytest.raises(RuntimeError), transaction.atomic():
        changes.record(op="insert", table="resources", account_id=account_id, new={"id": "x"})
        raise RuntimeError("rolled back")
    assert not ChangeLog.objects.filter(account_id=account_id).exists()
    with pytest.raises(TimeoutError):
        _receive_one(layer, channel)


@pytest.mark.django_db
def test_delete_records_every_row_of_the_cascade_children_first(
    django_capture_on_commit_callbacks,
) -> None:
    from accounts.models import ActorGroupMembership, Token
    from accounts.services.tokens import token_create
    from accounts.tests.factories import ActorFactory, GroupFactory, MembershipFactory

    actor = ActorFactory()
    group = GroupFactory(account=actor.account)
    membership = MembershipFactory(actor=actor, group=group, account=actor.account)
    issued = token_create(type="api_client", account=actor.account, actor=actor)
    start = ChangeLog.objects.order_by("-lsn").values_list("lsn", flat=True).first()

    with django_capture_on_commit_callbacks() as callbacks:
        recorded = changes.delete(actor)

    assert not Token.objects.filter(pk=issued.token.pk).exists()
    assert not ActorGroupMembership.objects.filter(pk=membership.pk).exists()
    tables = [c.table for c in recorded]
    assert tables[-1] == "actors"  # the root last, its dependants before it
    assert set(tables) == {"actors", "tokens", "actor_group_memberships"}
    assert all(c.op == "delete" and c.old is not None for c in recorded)
    logged = ChangeLog.objects.filter(lsn__gt=start).values_list("table", flat=True)
    assert sorted(logged) == sorted(tables)
    # memberships and the actor go to the account group; the token only to its session group
    assert len(callbacks) == 3
    group_sent = {c.table for c in recorded if c.table != "tokens"}
    assert group_sent == {"actors", "actor_group_memberships"}


@pytest.mark.django_db
def test_updated_records_nothing_when_nothing_changed() -> None:
    from accounts.tests.factories import ActorFactory

    actor = ActorFactory()
    before = changes.row_image(actor)
    assert changes.updated(before, actor) is None
    actor.name = "Renamed"
    change = changes.updated(before, actor)
    assert change is not None and change.changed("name") and not change.changed("type")


@pytest.mark.django_db
def test_secrets_are_redacted_from_change_images() -> None:
    from accounts.services.tokens import token_create
    from accounts.tests.factories import AccountFactory, ProviderFactory

    account = AccountFactory()
    provider = ProviderFactory(
        account=account,
        adapter_config={"client_id": "abc", "client_secret": "s3cr3t"},
        adapter_state={"access_token": "at", "refresh_token": "rt", "expires_at": "x"},
    )
    image = changes.row_image(provider)
    assert image["adapter_config"] == {"client_id": "abc", "client_secret": redaction.REDACTED}
    assert image["adapter_state"] == {
        "access_token": redaction.REDACTED,
        "refresh_token": redaction.REDACTED,
        "expires_at": "x",
    }
    from gateways.services.relays import relay_group_create_global

    group = relay_group_create_global(name="redaction-relays")
    issued = token_create(type="relay_group", account=None, relay_group=group, name="t")
    token_image = changes.row_image(issued.token)
    assert token_image["secret_hash"] == token_image["secret_salt"] == redaction.REDACTED
    assert token_image["id"] == str(issued.token.pk)
