"""The relay socket (protocol.md §3.3, §4.1, §6.4; §7 scenarios 68 and 69) against a live daphne.

Scenario 68's second half ("clients without relays receive `relays_presence`") needs the client
channel; here the relay's presence entries (with its stamp secret) are checked instead, which is
what that push is computed from.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from django.db import transaction

from accounts.models import Token
from accounts.tests.factories import subject_for
from firezone import changes
from gateways import presence
from gateways.consumers.relay import relay_presence_topics
from gateways.models import Relay
from gateways.services.relays import relay_delete, relay_group_delete
from gateways.tests.sockets import RELAY_PATH, RELAY_UA, World, make_world, stamp_secret
from tests.live import Device, Rejected, frame, reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DISCONNECT = frame("relay", "disconnect", {"reason": "token_expired"})
HEADERS = {"User-Agent": RELAY_UA, "X-Forwarded-For": "189.172.73.153"}


async def join_relay(live, world: World, *, global_: bool = True, secret: str | None = None):
    device = live.device()
    await device.connect(RELAY_PATH, world.relay_params(global_=global_), HEADERS)
    relays = Relay.objects.filter(ipv4="172.28.0.101")
    relay = relays.get(account__isnull=True) if global_ else relays.get(account=world.account)
    assert await device.join("relay", {"stamp_secret": secret or stamp_secret()}) == reply(
        "relay", 0
    )
    assert await device.recv() == frame("relay", "init", {})
    return device, relay


async def presences_of(relay: Relay) -> dict[str, dict[str, list[dict[str, Any]]]]:
    topics = relay_presence_topics(
        relay_id=relay.pk, group_id=relay.group_id, account_id=relay.account_id
    )
    return {topic: await presence.list_presences(topic) for topic in topics}


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def assert_offline(relay: Relay) -> None:
    async def offline() -> bool:
        found = await presences_of(relay)
        return not any(str(relay.pk) in entries for entries in found.values())

    await wait_for(offline)


# ------------------------------------------------------------------ 68: join and presence


@pytest.mark.parametrize("global_", [True, False], ids=["global", "account"])
async def test_68_relay_join_registers_presence_with_the_secret(live, global_) -> None:
    world = await run_sync(make_world)
    secret = stamp_secret()
    device, relay = await join_relay(live, world, global_=global_, secret=secret)
    async with device:
        assert (relay.ipv4, relay.ipv6, relay.port, relay.name) == (
            "172.28.0.101",
            "172:28::101",
            3478,
            "r1",
        )
        token = Token.objects.get(relay_group_id=relay.group_id)
        group_topic, shared_topic, relay_topic = relay_presence_topics(
            relay_id=relay.pk, group_id=relay.group_id, account_id=relay.account_id
        )
        assert shared_topic == (
            "global_relays" if global_ else f"account_relays:{world.account.pk}"
        )
        key = str(relay.pk)

        async def tracked() -> bool:  # presence is registered right after `init` is pushed
            found = await presences_of(relay)
            return all(key in entries for entries in found.values())

        await wait_for(tracked)
        found = await presences_of(relay)
        [shared] = found[shared_topic][key]
        assert shared["secret"] == secret
        assert isinstance(shared["online_at"], int)
        assert abs(shared["online_at"] - time.time()) < 30
        [grouped] = found[group_topic][key]
        assert grouped["token_id"] == str(token.pk)
        assert len(found[relay_topic][key]) == 1
        await device.expect_nothing(0.2)
    await assert_offline(relay)


async def test_68_two_connections_of_one_relay_and_phx_leave(live) -> None:
    world = await run_sync(make_world)
    first, relay = await join_relay(live, world, secret="a")
    second, same = await join_relay(live, world, secret="b")
    assert same.pk == relay.pk
    shared_topic = relay_presence_topics(relay_id=relay.pk, group_id=None, account_id=None)[1]

    async def secrets(expected: list[str]) -> bool:
        metas = (await presence.list_presences(shared_topic)).get(str(relay.pk), [])
        return sorted(m["secret"] for m in metas) == expected

    await wait_for(lambda: secrets(["a", "b"]))
    # Leaving the channel ends its presence; the socket stays usable.
    ref = await first.send("relay", "phx_leave", {})
    assert await first.recv() == reply("relay", ref)
    assert await first.recv() == frame("relay", "phx_close", {})

    await wait_for(lambda: secrets(["b"]))
    ref = await first.send("phoenix", "heartbeat", {})
    assert await first.recv() == reply("phoenix", ref)
    await first.close()
    await second.close()
    await assert_offline(relay)


# ------------------------------------------------------------------ 69: deletions (§6.4)


def admin(world: World) -> Any:
    return subject_for(world.actor, identity=world.identity)


def delete_atomically(target: Any) -> None:
    """System path (no service deletes global relays): what an operator's delete does."""
    with transaction.atomic():
        changes.delete(target)


async def assert_disconnected(device: Device) -> None:
    assert await device.expect_closed() == [DISCONNECT]


async def test_69_relay_deleted(live) -> None:
    world = await run_sync(make_world)
    device, relay = await join_relay(live, world, global_=False)
    other, _ = await join_relay(live, world, global_=True)  # another relay: untouched
    async with device, other:
        await run_sync(relay_delete, subject=admin(world), relay=relay)
        await assert_disconnected(device)
        await assert_offline(relay)
        ref = await other.send("phoenix", "heartbeat", {})
        assert await other.recv() == reply("phoenix", ref)


async def test_69_relay_group_deleted(live) -> None:
    world = await run_sync(make_world)
    device, relay = await join_relay(live, world, global_=False)
    async with device:
        await run_sync(relay_group_delete, subject=admin(world), group=world.relay_group)
        await assert_disconnected(device)
        await assert_offline(relay)


async def test_69_global_relay_deleted(live) -> None:
    world = await run_sync(make_world)
    device, relay = await join_relay(live, world, global_=True)
    async with device:
        await run_sync(delete_atomically, Relay.objects.filter(pk=relay.pk))
        await assert_disconnected(device)
        await assert_offline(relay)


async def test_69_global_relay_group_deleted(live) -> None:
    world = await run_sync(make_world)
    device, _ = await join_relay(live, world, global_=True)
    async with device:
        await run_sync(delete_atomically, world.global_group)
        await assert_disconnected(device)


async def test_relay_token_deleted_closes_without_a_frame(live) -> None:
    world = await run_sync(make_world)
    device, relay = await join_relay(live, world, global_=False)
    async with device:
        await run_sync(delete_atomically, Token.objects.filter(relay_group=world.relay_group))
        assert await device.expect_closed() == []
        await assert_offline(relay)
    with pytest.raises(Rejected) as info:
        await live.device().connect(RELAY_PATH, world.relay_params(global_=False), HEADERS)
    assert (info.value.status, info.value.text) == (401, "Invalid token")


async def test_unjoined_relay_is_closed_on_deletion(live) -> None:
    world = await run_sync(make_world)
    device = live.device()
    await device.connect(RELAY_PATH, world.relay_params(global_=False), HEADERS)
    relay = Relay.objects.get()
    async with device:
        await run_sync(relay_delete, subject=admin(world), relay=relay)
        assert await device.expect_closed() == []


async def test_relay_updates_do_not_disconnect(live) -> None:
    world = await run_sync(make_world)
    device, _ = await join_relay(live, world, global_=False)
    async with device:
        # A reconnect of the same relay elsewhere updates its row (last seen): nothing happens.
        again = live.device()
        await again.connect(RELAY_PATH, world.relay_params(global_=False), HEADERS)
        await again.close()
        await device.expect_nothing(0.3)
