"""The account hub (`gateways.hub.hub`) with a real Redis and database, in-process: what makes it
reload — lost messages (a sequence gap), a dropped stream connection, oversized transactions, a
batch that cannot be applied or a message that cannot be read.

After every scenario the fake client socket must have been told exactly the database truth
(`resources.access.connectable_resources`), frame by frame. Shared pieces:
gateways/tests/_hub_reload.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
import redis

from firezone import stream
from gateways import wire
from gateways.tests._hub_reload import (
    converged,
    eventually,
    grant_two,
    joined_fixture,  # noqa: F401
    reloads,
    rename_one,
    revoke_one,
    settle,
    stream_seq,
    sync_redis,
)
from tests.live import run_sync

pytestmark = pytest.mark.django_db(transaction=True)

# --- (a) a lost message: the next one shows a gap -------------------------------------------------


async def test_a_gap_reloads_and_converges_with_the_lost_change(joined, monkeypatch) -> None:
    world, hub, fake = joined.world, joined.hub, joined.fake
    before = reloads("gap")
    real_publish = stream.publish

    def lose(account_id: Any, xid: Any, changes: Any) -> int:
        """The message is numbered but never delivered (lost on the way)."""
        return stream_seq(account_id=account_id, incr=True)

    monkeypatch.setattr(stream, "publish", lose)
    await run_sync(grant_two, world)
    monkeypatch.setattr(stream, "publish", real_publish)
    await settle()
    assert list(fake.state) == [str(world.one)]  # the hub never heard of it
    assert fake.refreshes == 0

    await run_sync(revoke_one, world)  # published normally: seq = last + 2
    expected = await converged(fake, world)
    assert [v["id"] for v in expected] == [str(world.two)]
    assert reloads("gap") == before + 1
    assert sorted(fake.take_frames(), key=lambda f: f[0]) == [
        (wire.RESOURCE_CREATED_OR_UPDATED, expected[0]),
        (wire.RESOURCE_DELETED, str(world.one)),
    ]
    assert hub.last_seq == stream_seq(account_id=world.account_id)


async def test_a_gap_faked_by_incrementing_the_sequence(joined) -> None:
    """A Redis-side gap (the counter moved without a delivery, e.g. a restart reset and
    re-increment): the next message reloads; nothing is lost or pushed twice."""
    world, fake = joined.world, joined.fake
    before = reloads("gap")
    sync_redis().incr(stream.seq_key(world.account_id))
    await run_sync(grant_two, world)
    expected = await converged(fake, world)
    assert reloads("gap") == before + 1
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, expected[1])]
    await settle()
    assert fake.take_frames() == []


async def test_a_sequence_reset_while_connected_reloads(joined) -> None:
    """The account's counter starts again at 1 while the subscriber stays connected (its key
    was deleted or evicted, FLUSHDB): the next message is numbered 1, below what the hub last
    saw. `firezone.stream` promises a reload for anything but last + 1, a counter reset
    included; the change must not be dropped as a duplicate."""
    world, hub, fake = joined.world, joined.hub, joined.fake
    await run_sync(grant_two, world)
    await run_sync(rename_one, world, "renamed")
    await converged(fake, world)
    assert hub.last_seq >= 2
    sync_redis().delete(stream.seq_key(world.account_id))
    await run_sync(revoke_one, world)  # published as number 1
    await converged(fake, world)


# --- (b) the stream connection drops while a write happens ----------------------------------------


def kill_pubsub_connection(conn: redis.Redis, subscriber: stream.StreamSubscriber) -> None:
    """Kill exactly the subscriber's pub/sub connection (found by its local address)."""
    writer = subscriber._pubsub.connection._writer
    host, port = writer.get_extra_info("sockname")[:2]
    clients = conn.client_list(_type="pubsub")
    assert not isinstance(clients, Awaitable)  # redis-py types sync replies as maybe-awaitable
    (found,) = [c for c in clients if c["addr"] == f"{host}:{port}"]
    conn.execute_command("CLIENT", "KILL", "ID", found["id"])


def spy_on_deliveries(subscriber: stream.StreamSubscriber, account_id: Any) -> list[Any]:
    """Record what the subscriber hands the hub (sequence numbers, None for "reconnected")."""
    channel = stream.channel_name(account_id)
    handler = subscriber.handlers[channel]
    delivered: list[Any] = []

    async def spy(message: stream.StreamMessage | None) -> None:
        delivered.append(None if message is None else message.seq)
        await handler(message)

    subscriber.handlers[channel] = spy
    return delivered


async def test_b_reconnect_reloads_and_converges(joined, monkeypatch) -> None:
    """The subscriber's pub/sub connection is killed and a change is committed while it is
    down: the message is lost for this process. Once reconnected the hub must reload (reason
    "reconnect") and the socket converge, without waiting for some later write."""
    world, hub, fake = joined.world, joined.hub, joined.fake
    before = reloads("reconnect")
    # The reconnect waits long enough for the write below to be committed and published while
    # the subscriber is away.
    monkeypatch.setattr(stream, "_RECONNECT_DELAYS", (0.5,))
    conn = sync_redis()
    subscriber = stream.subscriber()
    delivered = spy_on_deliveries(subscriber, world.account_id)
    kill_pubsub_connection(conn, subscriber)
    await run_sync(grant_two, world)  # committed while the subscriber is (re)connecting
    published = stream_seq(conn, account_id=world.account_id)

    await converged(fake, world, timeout=8)
    assert reloads("reconnect") == before + 1
    assert None in delivered  # the subscriber told the hub it had been away
    assert published not in delivered, "the write was not lost: the test raced"
    assert hub.last_seq == stream_seq(conn, account_id=world.account_id)


# --- (c) an oversized transaction is announced as a reload marker ---------------------------------


async def test_c_oversized_transaction_reloads(joined, monkeypatch) -> None:
    world, fake = joined.world, joined.fake
    before = reloads("oversized")
    monkeypatch.setattr(stream, "MAX_MESSAGE_BYTES", 16)
    await run_sync(grant_two, world)
    expected = await converged(fake, world)
    assert reloads("oversized") == before + 1
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, expected[1])]
    monkeypatch.setattr(stream, "MAX_MESSAGE_BYTES", 4 * 1024 * 1024)
    await run_sync(revoke_one, world)  # normal messages again, applied incrementally
    await converged(fake, world)
    assert reloads("oversized") == before + 1
    assert fake.take_frames() == [(wire.RESOURCE_DELETED, str(world.one))]


# --- a batch that cannot be applied, a message that cannot be read --------------------------------


def publish_raw(account_id: Any, changes: list[dict[str, Any]]) -> int:
    """A message as `firezone.changes` would publish it, with hand-made change rows."""
    return stream.publish(account_id, None, changes)


async def test_a_batch_that_fails_to_apply_reloads(joined) -> None:
    world, fake = joined.world, joined.fake
    before = reloads("error")
    await run_sync(grant_two, world)
    await converged(fake, world)
    # Not a number where the change number belongs: apply_all raises.
    bad = {"lsn": "x", "table": "resources", "op": "update", "old": {}, "new": {"id": "y"}}
    await asyncio.to_thread(publish_raw, world.account_id, [bad])
    await eventually(lambda: reloads("error") == before + 1, what="an error reload")
    await run_sync(revoke_one, world)  # and the stream goes on
    await converged(fake, world)


async def test_an_undecodable_message_reloads(joined) -> None:
    world, hub, fake = joined.world, joined.hub, joined.fake
    before = reloads("reconnect")
    seq = stream_seq(account_id=world.account_id, incr=True)
    sync_redis().publish(stream.channel_name(world.account_id), f"{seq}|not json")
    await eventually(lambda: reloads("reconnect") == before + 1, what="a reload")
    await run_sync(grant_two, world)
    await converged(fake, world)
    assert hub.last_seq == seq + 1
