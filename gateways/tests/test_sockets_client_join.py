"""The client socket against a live daphne, asserting whole frames: joining and unknown events
(protocol.md §7 scenarios 15, 16), the init message (19-21) and the relays a client is given
(22-26).

Shared setup: gateways/tests/_sockets_client.py.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from gateways.tests._sockets_client import (
    RDNS_FILTERS_VIEW,
    RL1,
    RL2,
    RL3,
    ClientWorld,
    Joined,
    RelaySocket,
    b64_sha256,
    client_world,
    interface,
    join_client,
    join_relay,
    open_relay,
    push,
    relays_of,
    site_ref,
)
from gateways.tests.sockets import (
    CLIENT_PATH,
    stamp_secret,
)
from tests.live import reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# ------------------------------------------------------------------ 15, 16: join and unknown events


async def test_15_join_reply_precedes_init(live) -> None:
    cw = await run_sync(client_world)
    device = live.device()
    await device.connect(CLIENT_PATH, cw.w.client_params())
    async with device:
        await device.send_raw({"topic": "client", "event": "phx_join", "payload": None, "ref": 0})
        assert await device.recv() == reply("client", 0)
        second = await device.recv()
        assert second["event"] == "init"
        assert set(second["payload"]) == {"resources", "relays", "interface"}


async def test_16_unknown_client_event_keeps_the_channel(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    device = joined.device
    async with device:
        await device.send_raw(
            {"topic": "client", "event": "unknown_message", "payload": {}, "ref": 5}
        )
        assert await device.recv() == reply("client", 5, "error", {"reason": "unknown_message"})
        # A known event without its required keys falls through too (§1.8).
        ref = await device.send("client", "create_flow", {"resource_id": str(cw.rdns.pk)})
        assert await device.recv() == reply("client", ref, "error", {"reason": "unknown_message"})
        ref = await device.send("phoenix", "heartbeat", {})
        assert await device.recv() == reply("phoenix", ref)
        missing = str(uuid.uuid4())
        await device.send(
            "client", "create_flow", {"resource_id": missing, "connected_gateway_ids": []}
        )
        assert await device.recv() == push(
            "flow_creation_failed", {"resource_id": missing, "reason": "not_found"}
        )


# ------------------------------------------------------------------ 19-21: init


async def test_19_init_content(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        client = joined.client
        assert client.last_seen_remote_ip_location_region == "Ukraine"
        payload = joined.init["payload"]
        assert payload["relays"] == []
        assert payload["interface"] == interface(client)
        expected: list[dict[str, Any]] = [
            {
                "id": str(cw.rdns.pk),
                "type": "dns",
                "address": "*.httpbin",
                "address_description": "httpbin wildcard",
                "name": "httpbin",
                "gateway_groups": [site_ref(cw.site)],
                "filters": RDNS_FILTERS_VIEW,
                "ip_stack": "ipv4_only",
            },
            {
                "id": str(cw.rcidr.pk),
                "type": "cidr",
                "address": "192.168.1.0/28",
                "address_description": None,
                "name": "lan",
                "gateway_groups": [site_ref(cw.site)],
                "filters": [],
            },
            {
                "id": str(cw.rip.pk),
                "type": "cidr",
                "address": "192.168.100.1/32",
                "address_description": None,
                "name": "printer",
                "gateway_groups": [site_ref(cw.site)],
                "filters": [],
            },
            {
                "id": str(cw.rinet.pk),
                "type": "internet",
                "gateway_groups": [site_ref(cw.internet_site)],
                "can_be_disabled": True,
            },
        ]
        by_id = sorted(payload["resources"], key=lambda r: r["id"])
        assert by_id == sorted(expected, key=lambda r: str(r["id"]))
        await joined.device.expect_nothing(0.3)


async def test_20_resource_granted_twice_is_listed_once(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        cw.grant(cw.rdns, group=cw.group_with_member("G2"))
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    async with joined.device:
        ids = [r["id"] for r in joined.init["payload"]["resources"]]
        assert ids.count(str(cw.rdns.pk)) == 1
        assert len(ids) == 4


async def test_21_old_client_gets_old_wildcards_and_no_internet(live) -> None:
    addresses = [
        "**.glob-example.com",
        "*.question-example.com",
        "foo.*.example.com",
        "foo.**.glob-example.com",
        "us-east?-d.glob-example.com",
    ]

    def setup() -> ClientWorld:
        cw = client_world(grant_all=False)
        cw.grant(cw.rinet)
        for address in addresses:
            cw.grant(cw.resource(cw.site, address=address, name=address))
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw, user_agent="iOS/12.7 (iPhone) connlib/1.1.55")
    async with joined.device:
        resources = joined.init["payload"]["resources"]
        assert sorted(r["address"] for r in resources) == [
            "*.glob-example.com",
            "?.question-example.com",
        ]
        assert all(r["type"] == "dns" for r in resources)


# ------------------------------------------------------------------ 22-26: relays


async def test_22_relays_in_init(live) -> None:
    cw = await run_sync(client_world)
    rl1 = await join_relay(live, cw, RL1)
    rl2 = await join_relay(live, cw, RL2)
    async with rl1.device, rl2.device:
        joined = await join_client(live, cw)
        async with joined.device:
            relays = joined.init["payload"]["relays"]
            expected = relays_of(rl1, joined, cw) + relays_of(rl2, joined, cw)
            assert sorted(relays, key=lambda r: r["addr"]) == sorted(
                expected, key=lambda r: r["addr"]
            )
            # IPv4 entry first, per relay.
            for relay in (rl1, rl2):
                entries = [r for r in relays if r["id"] == str(relay.relay_id)]
                assert [r["addr"] for r in entries] == [
                    f"{relay.ipv4}:3478",
                    f"[{relay.ipv6}]:3478",
                ]
            salt = b64_sha256(joined.params["public_key"])
            assert all(r["username"] == f"{cw.expiry}:{salt}" for r in relays)


async def test_23_relay_leave_is_debounced(live) -> None:
    cw = await run_sync(client_world)
    rl1 = await join_relay(live, cw, RL1)
    rl2 = await join_relay(live, cw, RL2)
    async with rl2.device:
        joined = await join_client(live, cw)
        async with joined.device:
            assert len(joined.init["payload"]["relays"]) == 4
            started = time.monotonic()
            await rl1.device.close()
            # The server's debounce is 300 ms (tests.live.SERVER_ENV).
            await joined.device.expect_nothing(0.15)
            pushed = await joined.device.recv(5)
            assert time.monotonic() - started >= 0.25
            assert pushed == push(
                "relays_presence",
                {
                    "disconnected_ids": [str(rl1.relay_id)],
                    "connected": relays_of(rl2, joined, cw),
                },
            )
            await joined.device.expect_nothing(0.5)


async def test_24_first_relay_is_announced_later_ones_are_not(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        assert joined.init["payload"]["relays"] == []
        rl1 = await join_relay(live, cw, RL1)
        async with rl1.device:
            assert await joined.device.recv() == push(
                "relays_presence",
                {"disconnected_ids": [], "connected": relays_of(rl1, joined, cw)},
            )
            rl3 = await join_relay(live, cw, RL3)
            async with rl3.device:
                await joined.device.expect_nothing(0.6)


async def _client_with_rl1(live, cw: ClientWorld) -> tuple[Joined, RelaySocket]:
    joined = await join_client(live, cw)
    rl1 = await join_relay(live, cw, RL1)
    assert await joined.device.recv() == push(
        "relays_presence", {"disconnected_ids": [], "connected": relays_of(rl1, joined, cw)}
    )
    return joined, rl1


async def test_25_relay_flap_with_the_same_secret_is_hidden(live) -> None:
    cw = await run_sync(client_world)
    joined, rl1 = await _client_with_rl1(live, cw)
    async with joined.device:
        # The reconnect's upgrade is done before the old socket goes: only the join is raced
        # against the 300 ms debounce.
        again = await open_relay(live, cw, RL1)
        await rl1.device.close()
        back = await join_relay(live, cw, RL1, secret=rl1.secret, device=again)
        async with back.device:
            deadline = time.monotonic() + 1.0
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    pushed = await joined.device.recv(remaining)
                except TimeoutError:
                    break
                assert pushed["event"] == "relays_presence"
                assert str(rl1.relay_id) not in pushed["payload"]["disconnected_ids"]
                assert pushed["payload"]["connected"] == relays_of(back, joined, cw)


async def test_26_relay_restart_with_a_new_secret_is_reported(live) -> None:
    cw = await run_sync(client_world)
    joined, rl1 = await _client_with_rl1(live, cw)
    async with joined.device:
        again = await open_relay(live, cw, RL1)
        await rl1.device.close()
        restarted = await join_relay(live, cw, RL1, secret=stamp_secret(), device=again)
        async with restarted.device:
            pushed = await joined.device.recv(5)
            fresh = relays_of(restarted, joined, cw)
            assert pushed == push(
                "relays_presence",
                {"disconnected_ids": [str(rl1.relay_id)], "connected": fresh},
            )
            assert fresh[0]["password"] != relays_of(rl1, joined, cw)[0]["password"]
