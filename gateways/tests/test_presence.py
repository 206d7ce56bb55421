"""Redis-backed presence (protocol.md §4.1): entries per connection, diffs on the channel layer,
expiry of entries no process refreshes, several processes sharing one registry."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync

from gateways import presence
from gateways.presence.connections import loop_state
from gateways.tasks import presence_sweep
from gateways.tests._presence import Listener, new_id, presence_env_fixture  # noqa: F401


def test_topics_and_group_names() -> None:
    account = "a1b2"
    assert presence.account_clients_topic(account) == "account_clients:a1b2"
    assert presence.actor_clients_topic("x") == "actor_clients:x"
    assert presence.account_gateways_topic(account) == "account_gateways:a1b2"
    assert presence.group_gateways_topic("s") == "group_gateways:s"
    assert presence.group_relays_topic("g") == "group_relays:g"
    assert presence.account_relays_topic(account) == "account_relays:a1b2"
    assert presence.relay_topic("r") == "relays:r"
    assert presence.group_name("account_clients:a1b2") == "presence.account_clients.a1b2"
    assert presence.group_name(presence.GLOBAL_RELAYS) == "presence.global_relays"


async def test_online_until_the_last_connection_leaves(presence_env) -> None:
    topic, device = presence.account_clients_topic(new_id()), new_id()
    listener = await Listener().listen(topic)
    first, second = presence.PresenceTracker(), presence.PresenceTracker()

    await first.track(topic, device, {"online_at": 100})
    await second.track(topic, device, {"online_at": 200})
    assert await presence.list_presences(topic) == {
        device: [{"online_at": 100}, {"online_at": 200}]
    }

    await first.untrack_all()
    assert await presence.list_presences(topic) == {device: [{"online_at": 200}]}
    await second.untrack(topic, device)
    assert await presence.list_presences(topic) == {}

    diffs = [await listener.receive() for _ in range(4)]
    assert diffs == [
        {
            "type": "presence.diff",
            "topic": topic,
            "joins": {device: {"online_at": 100}},
            "leaves": {},
        },
        {
            "type": "presence.diff",
            "topic": topic,
            "joins": {device: {"online_at": 200}},
            "leaves": {},
        },
        {
            "type": "presence.diff",
            "topic": topic,
            "joins": {},
            "leaves": {device: {"online_at": 100}},
        },
        {
            "type": "presence.diff",
            "topic": topic,
            "joins": {},
            "leaves": {device: {"online_at": 200}},
        },
    ]
    assert await listener.nothing()


async def test_meta_gets_online_at_and_retrack_is_an_update(presence_env) -> None:
    topic, relay = presence.GLOBAL_RELAYS, new_id()
    listener = await Listener().listen(topic)
    tracker = presence.PresenceTracker()

    await tracker.track(topic, relay, {"secret": "s1"})
    joined = await listener.receive()
    meta = joined["joins"][relay]
    assert meta["secret"] == "s1" and isinstance(meta["online_at"], int)

    await tracker.track(topic, relay, {"secret": "s2", "online_at": 5})
    assert await listener.receive() == {
        "type": "presence.diff",
        "topic": topic,
        "joins": {relay: {"secret": "s2", "online_at": 5}},
        "leaves": {relay: meta},
    }
    assert await presence.list_presences(topic) == {relay: [{"secret": "s2", "online_at": 5}]}
    await tracker.untrack_all()


async def test_untrack_all_leaves_every_topic_and_the_tracker_stays_closed(presence_env) -> None:
    account, client, actor = new_id(), new_id(), new_id()
    topics = [presence.account_clients_topic(account), presence.actor_clients_topic(actor)]
    listener = await Listener().listen(*topics)
    tracker = presence.PresenceTracker("specific.abc!def")
    await tracker.track(topics[0], client, {"online_at": 1})
    await tracker.track(topics[1], client, {"token_id": "t", "online_at": 1})
    assert set(tracker.entries) == {(topics[0], client), (topics[1], client)}
    [await listener.receive() for _ in range(2)]

    await tracker.untrack_all()
    leaves = {m["topic"]: m["leaves"] for m in [await listener.receive() for _ in range(2)]}
    assert leaves == {
        topics[0]: {client: {"online_at": 1}},
        topics[1]: {client: {"token_id": "t", "online_at": 1}},
    }
    assert await presence.list_presences_many(topics) == {topics[0]: {}, topics[1]: {}}

    await tracker.track(topics[0], client, {})  # a late track after disconnect is void
    assert await presence.list_presences(topics[0]) == {}
    assert await listener.nothing()
    await presence.untrack(topics[0], client, tracker.conn_id)  # unknown entry: no diff
    assert await listener.nothing()


async def test_reserved_characters_are_refused(presence_env) -> None:
    with pytest.raises(ValueError):
        await presence.track("t", "a|b", "conn", {})
    with pytest.raises(ValueError):
        await presence.track("t", "k", "c|onn", {})
    with pytest.raises(ValueError):
        presence.PresenceTracker("c|onn")


async def test_unrefreshed_entries_expire_and_sweep_publishes_their_leaves(presence_env) -> None:
    presence_env.PRESENCE_TTL_SECONDS = 0.3
    topic, gateway, conn = presence.account_gateways_topic(new_id()), new_id(), new_id()
    listener = await Listener().listen(topic)
    # A "crashed process": its entry was written, nobody refreshes it.
    await presence.track(topic, gateway, conn, {"online_at": 7})
    assert (await listener.receive())["joins"] == {gateway: {"online_at": 7}}
    assert await presence.list_presences(topic) == {gateway: [{"online_at": 7}]}

    await asyncio.sleep(0.5)
    # Expired entries are invisible before the sweep...
    assert await presence.list_presences(topic) == {}
    # ...and the sweep removes them and reports each leave exactly once, even when two
    # sweepers race.
    removed = await asyncio.gather(presence.sweep(), presence.sweep())
    assert sum(removed) == 1
    assert await listener.receive() == {
        "type": "presence.diff",
        "topic": topic,
        "joins": {},
        "leaves": {gateway: {"online_at": 7}},
    }
    assert await presence.sweep() == 0
    assert await listener.nothing()


async def test_sweep_splits_a_key_that_lost_several_entries(presence_env) -> None:
    presence_env.PRESENCE_TTL_SECONDS = 0.2
    topic, device = presence.account_clients_topic(new_id()), new_id()
    await presence.track(topic, device, "c1", {"online_at": 1})
    await presence.track(topic, device, "c2", {"online_at": 2})
    listener = await Listener().listen(topic)
    await asyncio.sleep(0.4)
    assert await presence.sweep() == 2
    leaves = [(await listener.receive())["leaves"] for _ in range(2)]
    assert sorted(leave[device]["online_at"] for leave in leaves) == [1, 2]


async def test_trackers_are_refreshed_in_the_background(presence_env) -> None:
    presence_env.PRESENCE_TTL_SECONDS = 0.4
    presence_env.PRESENCE_REFRESH_SECONDS = 0.1
    topic, client = presence.account_clients_topic(new_id()), new_id()
    tracker = presence.PresenceTracker()
    await tracker.track(topic, client, {"online_at": 1})
    await asyncio.sleep(1.0)  # 2.5 TTLs
    assert await presence.sweep() == 0
    assert await presence.list_presences(topic) == {client: [{"online_at": 1}]}
    await tracker.untrack_all()
    await asyncio.sleep(0.25)  # the refresher notices it has nothing left and stops
    assert loop_state().refresher is None


async def test_refresh_re_registers_entries_redis_lost(presence_env) -> None:
    topic, client = presence.account_clients_topic(new_id()), new_id()
    tracker = presence.PresenceTracker()
    await tracker.track(topic, client, {"online_at": 3})
    listener = await Listener().listen(topic)
    # As if swept while this process stalled (or Redis restarted empty).
    await presence.untrack_conn(tracker.conn_id)
    assert (await listener.receive())["leaves"] == {client: {"online_at": 3}}

    await presence.refresh([tracker])
    assert (await listener.receive())["joins"] == {client: {"online_at": 3}}
    assert await presence.list_presences(topic) == {client: [{"online_at": 3}]}
    await tracker.untrack_all()


async def test_two_processes_see_each_others_entries(presence_env) -> None:
    """A second event loop in another thread has its own Redis client and tracker registry:
    what a second daphne process would have."""
    topic, here, there = presence.account_gateways_topic(new_id()), new_id(), new_id()
    listener = await Listener().listen(topic)
    local = presence.PresenceTracker()
    await local.track(topic, here, {"online_at": 1})
    await listener.receive()

    seen_there: dict = {}
    tracked, release = threading.Event(), threading.Event()

    async def other_process() -> None:
        remote = presence.PresenceTracker()
        await remote.track(topic, there, {"online_at": 2})
        seen_there.update(await presence.list_presences(topic))
        tracked.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait)
        await remote.untrack_all()
        await presence.aclose()

    thread = threading.Thread(target=lambda: asyncio.run(other_process()))
    thread.start()
    try:
        await asyncio.get_running_loop().run_in_executor(None, tracked.wait, 5)
        assert seen_there == {here: [{"online_at": 1}], there: [{"online_at": 2}]}
        assert await presence.list_presences(topic) == seen_there
        assert (await listener.receive())["joins"] == {there: {"online_at": 2}}
    finally:
        release.set()
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 5)
    assert (await listener.receive())["leaves"] == {there: {"online_at": 2}}
    assert await presence.list_presences(topic) == {here: [{"online_at": 1}]}
    await local.untrack_all()


async def test_concurrent_identical_reads_are_shared_but_never_stale(presence_env) -> None:
    calls, version = 0, 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        seen = version
        await asyncio.sleep(0.05)
        return seen

    first = asyncio.ensure_future(presence.coalesced("k", read))
    await asyncio.sleep(0.01)  # the first read is running
    version = 1  # "a diff arrived": later callers must see state after it
    later = await asyncio.gather(*(presence.coalesced("k", read) for _ in range(50)))
    assert await first == 0
    assert later == [1] * 50 and calls == 2  # one read for the first, one for the 50 others
    assert await presence.coalesced("k", read) == 1 and calls == 3
    assert loop_state().inflight == {}


async def test_a_shared_read_survives_a_cancelled_waiter(presence_env) -> None:
    async def read() -> str:
        await asyncio.sleep(0.05)
        return "value"

    cancelled = asyncio.ensure_future(presence.coalesced("c", read))
    other = asyncio.ensure_future(presence.coalesced("c", read))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    assert await other == "value"


def test_sync_twins_and_the_beat_task(settings) -> None:
    import uuid

    settings.PRESENCE_KEY_PREFIX = f"test-presence:{uuid.uuid4().hex}"
    settings.PRESENCE_TTL_SECONDS = 0.2
    topic, key = presence.group_gateways_topic(new_id()), new_id()
    received: list = []

    async def setup() -> Listener:
        listener = await Listener().listen(topic)
        await presence.track(topic, key, "conn-1", {"token_id": "tok", "online_at": 9})
        await listener.receive()
        await presence.aclose()
        return listener

    listener = async_to_sync(setup)()
    assert presence.list_presences_sync(topic) == {key: [{"token_id": "tok", "online_at": 9}]}
    assert presence.list_presences_many_sync([topic, "nothing:here"]) == {
        topic: {key: [{"token_id": "tok", "online_at": 9}]},
        "nothing:here": {},
    }
    import time

    time.sleep(0.4)
    assert presence.list_presences_sync(topic) == {}
    assert presence_sweep() == 1

    async def drain() -> None:
        received.append(await listener.receive())

    async_to_sync(drain)()
    assert received[0]["leaves"] == {key: {"token_id": "tok", "online_at": 9}}
    assert presence_sweep() == 0


def test_the_sweep_is_on_the_beat_schedule() -> None:
    from firezone.celery import app

    entry = next(
        e for e in app.conf.beat_schedule.values() if e["task"] == "gateways.tasks.presence_sweep"
    )
    assert entry["schedule"] == 10.0


async def test_diffs_of_topics_nobody_listens_to_are_not_sent(presence_env, monkeypatch) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    sent: list[str] = []
    real = layer.group_send

    async def counting(group: str, message: dict) -> None:
        sent.append(group)
        await real(group, message)

    monkeypatch.setattr(layer, "group_send", counting)
    listened, silent = (
        presence.group_gateways_topic(new_id()),
        presence.group_gateways_topic(new_id()),
    )
    listener = await Listener().listen(listened)
    tracker = presence.PresenceTracker()
    await tracker.track_many([(listened, "g", {}), (silent, "g", {})])
    await tracker.untrack_all()
    assert sent == [presence.group_name(listened)] * 2
    assert [bool(m["joins"]) for m in [await listener.receive(), await listener.receive()]] == [
        True,
        False,
    ]
