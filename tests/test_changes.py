"""A recorded change reaches the account group once, after commit, and never on rollback."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from accounts.models import Account, ChangeLog
from firezone import changes


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
