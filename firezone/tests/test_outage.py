"""`firezone.outage` (a store's connection error told from a bug) and the channel layer that
survives a Redis restart (`firezone.channel_layer`), against a Redis of the test's own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg_pool
import pytest
import redis.exceptions
from django.db import OperationalError

from firezone.channel_layer import ResilientRedisChannelLayer
from firezone.outage import describe, is_outage
from tests.faults import Redis


def test_connection_errors_of_either_store_are_outages_bugs_are_not() -> None:
    assert is_outage(redis.exceptions.ConnectionError("Connection refused"))
    assert is_outage(redis.exceptions.TimeoutError("Timeout reading"))
    assert is_outage(OperationalError("server closed the connection unexpectedly"))
    assert is_outage(psycopg_pool.PoolTimeout("couldn't get a connection after 3.00 sec"))
    assert is_outage(ConnectionRefusedError(111, "Connection refused"))
    assert not is_outage(ValueError("bad payload"))
    assert not is_outage(KeyError("resource_id"))


def test_an_error_caused_by_an_outage_is_one() -> None:
    try:
        try:
            raise redis.exceptions.ConnectionError("Connection refused")
        except redis.exceptions.ConnectionError as exc:
            raise RuntimeError("account hub could not be loaded") from exc
    except RuntimeError as wrapped:
        assert is_outage(wrapped)
    assert describe(OperationalError("line one\nline two")) == "OperationalError: line one"


@pytest.mark.slow
async def test_the_layer_receive_waits_out_a_redis_restart(tmp_path: Path) -> None:
    server = Redis(tmp_path / "redis")
    server.start()
    try:
        layer = ResilientRedisChannelLayer(hosts=[server.url], prefix="outage-test")
        recovered = asyncio.Event()

        async def on_recovery() -> None:
            recovered.set()

        layer.on_recovery(on_recovery)
        channel = await layer.new_channel()
        await layer.group_add("devices", channel)
        receive = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0.2)

        server.kill()
        await asyncio.sleep(1.5)
        assert not receive.done()  # channels-redis's own receive would have raised
        assert layer.down_since is not None
        await layer.group_discard("devices", channel)  # never fails a disconnect
        with pytest.raises(redis.exceptions.ConnectionError):
            await layer.group_send("devices", {"type": "x.y"})  # senders answer the device

        server.start()
        await asyncio.wait_for(recovered.wait(), 3)  # noticed within the back-off (≤ 1 s)
        assert layer.down_since is None
        await layer.send(channel, {"type": "after.restart"})
        assert await asyncio.wait_for(receive, 10) == {"type": "after.restart"}
        await layer.flush()
        await layer.close_pools()
    finally:
        server.stop()
