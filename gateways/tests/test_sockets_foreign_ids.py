"""Every id a device sends is scoped to its account (issue 17, point 3): on the client and gateway
channels, another account's client, gateway, resource or ref is treated exactly like an unknown
one (ignored, or the spec's `not_found` / `invalid_ref`), and nothing reaches the other account's
devices. A ref is redeemable only on the socket of the gateway it was minted for (one without a
gateway id by none). The last test feeds every id-carrying event at once and checks that no row
was written. Two accounts A and B, each with a site, a resource granted to its user, a gateway and a
client, all on one live daphne.

Shared setup: gateways/tests/_sockets_gateway.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from channels.layers import get_channel_layer

from accounts.models import Account
from firezone.models import ChangeLog
from gateways.crypto import pair_credentials, sign_ref
from gateways.models import Client, Gateway
from gateways.tests._sockets_gateway import Setup, join_gateway, make_setup
from gateways.tests.sockets import public_key
from resources.models import Flow
from tests.live import DEVICE_HEADERS, Device, frame, reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HEADLESS_UA = "Ubuntu/22.04 headless-client/1.5.4"
LEGACY_UA = "iOS/12.7 (iPhone) connlib/1.3.0"
QUIET = 0.4  # seconds a device must stay silent


def client_frame(event: str, payload: Any) -> dict[str, Any]:
    return frame("client", event, payload)


async def join_client(live, setup: Setup, ua: str) -> tuple[Device, Client]:
    params = setup.world.client_params()
    device = live.device()
    await device.connect("/client/websocket", params, {**DEVICE_HEADERS, "User-Agent": ua})
    assert await device.join("client") == reply("client", 0)
    assert (await device.recv())["event"] == "init"
    return device, Client.objects.get(external_id=params["external_id"])


def two_setups() -> tuple[Setup, Setup]:
    a = make_setup()
    Account.objects.filter(pk=a.account.pk).update(slug="acme-a")
    a.account.slug = "acme-a"
    return a, make_setup()


@dataclass
class Side:
    setup: Setup
    gw: Device
    gateway: Gateway
    client: Device
    row: Client


async def _side(live, setup: Setup, *, client_ua: str | None = None) -> Side:
    gw, gateway, _ = await join_gateway(live, setup.world)
    client, row = await join_client(live, setup, client_ua or HEADLESS_UA)
    return Side(setup, gw, gateway, client, row)


async def _sides(live, *, client_ua: str | None = None) -> tuple[Side, Side]:
    a, b = await run_sync(two_setups)
    return await _side(live, a, client_ua=client_ua), await _side(live, b, client_ua=client_ua)


async def _quiet(*devices: Device) -> None:
    await asyncio.gather(*(d.expect_nothing(QUIET) for d in devices))


# ------------------------------------------------------------------ ICE candidates


@pytest.mark.parametrize(
    ("event", "pushed"),
    [
        ("broadcast_ice_candidates", "ice_candidates"),
        ("broadcast_invalidated_ice_candidates", "invalidate_ice_candidates"),
    ],
)
async def test_gateway_ice_candidates_never_reach_another_accounts_client(
    live, event: str, pushed: str
) -> None:
    a, b = await _sides(live)
    async with a.gw, a.client, b.gw, b.client:
        # Only the foreign client: nothing for anyone, no reply.
        only_b = {"client_ids": [str(b.row.pk)], "candidates": ["foo"]}
        await a.gw.send("gateway", event, only_b)
        await _quiet(a.gw, a.client, b.client, b.gw)
        # Both: A's own client gets the candidates, B's client still nothing.
        both = {"client_ids": [str(b.row.pk), str(a.row.pk)], "candidates": ["foo", "bar"]}
        await a.gw.send("gateway", event, both)
        assert await a.client.recv() == client_frame(
            pushed, {"gateway_id": str(a.gateway.pk), "candidates": ["foo", "bar"]}
        )
        await _quiet(a.gw, a.client, b.client, b.gw)


@pytest.mark.parametrize(
    "event", ["broadcast_ice_candidates", "broadcast_invalidated_ice_candidates"]
)
async def test_client_ice_candidates_never_reach_another_accounts_gateway(live, event: str) -> None:
    a, b = await _sides(live)
    async with a.gw, a.client, b.gw, b.client:
        await a.client.send(
            "client", event, {"gateway_ids": [str(b.gateway.pk)], "candidates": ["foo"]}
        )
        await _quiet(a.client, a.gw, b.gw, b.client)
        both = {"gateway_ids": [str(b.gateway.pk), str(a.gateway.pk)], "candidates": ["x"]}
        await a.client.send("client", event, both)
        assert (await a.gw.recv())["payload"] == {"client_id": str(a.row.pk), "candidates": ["x"]}
        await _quiet(a.client, a.gw, b.gw, b.client)


# ------------------------------------------------------------- create_flow / prepare_connection


async def test_create_flow_for_another_accounts_resource_is_not_found(live) -> None:
    a, b = await _sides(live)
    async with a.gw, a.client, b.gw, b.client:
        rid = str(b.setup.rdns.pk)
        payload = {"resource_id": rid, "connected_gateway_ids": [str(b.gateway.pk)]}
        await a.client.send("client", "create_flow", payload)
        assert await a.client.recv() == client_frame(
            "flow_creation_failed", {"resource_id": rid, "reason": "not_found"}
        )
        await _quiet(a.client, a.gw, b.gw, b.client)


async def test_create_flow_naming_another_accounts_gateway_uses_an_own_one(live) -> None:
    a, b = await _sides(live)
    async with a.gw, a.client, b.gw, b.client:
        payload = {
            "resource_id": str(a.setup.rdns.pk),
            "connected_gateway_ids": [str(b.gateway.pk)],
        }
        await a.client.send("client", "create_flow", payload)
        assert (await a.gw.recv())["event"] == "authorize_flow"
        await _quiet(a.client, b.gw, b.client)


async def test_prepare_connection_naming_foreign_ids(live) -> None:
    a, b = await _sides(live, client_ua=LEGACY_UA)
    async with a.gw, a.client, b.gw, b.client:
        # Another account's resource: not_found, like an unknown id.
        foreign = {"resource_id": str(b.setup.rdns.pk), "connected_gateway_ids": []}
        ref = await a.client.send("client", "prepare_connection", foreign)
        assert await a.client.recv() == reply("client", ref, "error", {"reason": "not_found"})
        # Another account's gateway as "connected": ignored, an own gateway is chosen.
        own = {"resource_id": str(a.setup.rdns.pk), "connected_gateway_ids": [str(b.gateway.pk)]}
        ref = await a.client.send("client", "prepare_connection", own)
        answer = await a.client.recv()
        assert answer["payload"]["status"] == "ok", answer
        assert answer["payload"]["response"]["gateway_id"] == str(a.gateway.pk)
        await _quiet(a.client, a.gw, b.gw, b.client)


# ------------------------------------------------------------------ legacy request/reuse_connection


def _legacy_request(event: str, gateway_id: Any, resource_id: Any) -> dict[str, Any]:
    if event == "request_connection":
        return {
            "gateway_id": str(gateway_id),
            "resource_id": str(resource_id),
            "client_preshared_key": public_key(),
            "client_payload": {"ice_parameters": {"username": "abcd", "password": "x" * 22}},
        }
    return {"gateway_id": str(gateway_id), "resource_id": str(resource_id), "payload": None}


@pytest.mark.parametrize("event", ["request_connection", "reuse_connection"])
async def test_legacy_connection_to_another_accounts_gateway_is_not_found(live, event: str) -> None:
    a, b = await _sides(live, client_ua=LEGACY_UA)
    not_found = {"reason": "not_found"}
    async with a.gw, a.client, b.gw, b.client:
        for gateway, resource in (
            (b.gateway, a.setup.rdns),  # foreign gateway, own resource
            (b.gateway, b.setup.rdns),  # both foreign
            (a.gateway, b.setup.rdns),  # own gateway, foreign resource
        ):
            ref = await a.client.send(
                "client", event, _legacy_request(event, gateway.pk, resource.pk)
            )
            assert await a.client.recv() == reply("client", ref, "error", not_found)
        await _quiet(a.client, a.gw, b.gw, b.client)


# ------------------------------------------------------------------ refs redeemed by a gateway


async def test_gateway_cannot_redeem_refs_minted_for_another_accounts_gateway(live) -> None:
    a, b = await _sides(live)
    layer = get_channel_layer()
    channel = await layer.new_channel()  # stands for B's client socket
    psk, ice = await run_sync(pair_credentials, b.row, b.gateway)
    flow_ref = sign_ref(
        {
            "client_channel": channel,
            "client_id": str(b.row.pk),
            "resource_id": str(b.setup.rdns.pk),
            "gateway_id": str(b.gateway.pk),
            "preshared_key": psk,
            "client_ice_credentials": ice.client.as_dict(),
            "gateway_ice_credentials": ice.gateway.as_dict(),
        }
    )
    ready_ref = sign_ref(
        {
            "client_channel": channel,
            "client_id": str(b.row.pk),
            "resource_id": str(b.setup.rdns.pk),
            "gateway_id": str(b.gateway.pk),
            "client_ref": 3,
            "client_join_ref": None,
        }
    )
    invalid = {"reason": "invalid_ref"}
    async with a.gw, a.client, b.gw, b.client:
        ref = await a.gw.send("gateway", "flow_authorized", {"ref": flow_ref})
        assert await a.gw.recv() == reply("gateway", ref, "error", invalid)
        ready = {"ref": ready_ref, "gateway_payload": "X"}
        ref = await a.gw.send("gateway", "connection_ready", ready)
        assert await a.gw.recv() == reply("gateway", ref, "error", invalid)
        await _quiet(a.gw, a.client, b.gw, b.client)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.3)


# ------------------------------------------------------------------ every event at once


def _rows(a: Setup, b: Setup) -> dict[str, int]:
    return {
        "flows A": Flow.objects.filter(account=a.account).count(),
        "flows B": Flow.objects.filter(account=b.account).count(),
        "changes B": ChangeLog.objects.filter(account_id=b.account.pk).count(),
    }


async def test_every_id_carrying_event_refuses_another_accounts_ids(live) -> None:
    """Each client and gateway event that names a client, gateway, resource or flow (by ref),
    fed only account B's ids from account A's devices: the spec's answer for an unknown id
    (`not_found`, `invalid_ref`, or silence for ICE candidates), no row written in either
    account, nothing sent to B's devices. (Relays send no ids: only their join's secret.)"""
    a, b = await _sides(live)
    legacy, _ = await join_client(live, a.setup, LEGACY_UA)
    layer = get_channel_layer()
    channel = await layer.new_channel()  # stands for B's client socket
    psk, ice = await run_sync(pair_credentials, b.row, b.gateway)
    minted = {
        "client_channel": channel,
        "client_id": str(b.row.pk),
        "resource_id": str(b.setup.rdns.pk),
        "preshared_key": psk,
        "client_ice_credentials": ice.client.as_dict(),
        "gateway_ice_credentials": ice.gateway.as_dict(),
        "client_ref": 3,
        "client_join_ref": None,
    }
    for_b = sign_ref({**minted, "gateway_id": str(b.gateway.pk)})
    # Minted without a gateway id (an older format): no gateway may redeem it, A's included.
    for_anyone = sign_ref(minted)
    gw, rid, cid = str(b.gateway.pk), str(b.setup.rdns.pk), str(b.row.pk)
    not_found = {"reason": "not_found"}
    invalid = {"reason": "invalid_ref"}
    before = await run_sync(_rows, a.setup, b.setup)
    async with a.gw, a.client, b.gw, b.client, legacy:
        await a.client.send(
            "client", "create_flow", {"resource_id": rid, "connected_gateway_ids": [gw]}
        )
        assert await a.client.recv() == client_frame(
            "flow_creation_failed", {"resource_id": rid, "reason": "not_found"}
        )
        for event in ("broadcast_ice_candidates", "broadcast_invalidated_ice_candidates"):
            await a.client.send("client", event, {"gateway_ids": [gw], "candidates": ["c"]})
            await a.gw.send("gateway", event, {"client_ids": [cid], "candidates": ["c"]})
        legacy_events = [
            ("prepare_connection", {"resource_id": rid, "connected_gateway_ids": [gw]}),
            ("request_connection", _legacy_request("request_connection", gw, rid)),
            ("reuse_connection", _legacy_request("reuse_connection", gw, rid)),
        ]
        for event, payload in legacy_events:
            ref = await legacy.send("client", event, payload)
            assert await legacy.recv() == reply("client", ref, "error", not_found), event
        for ref_value in (for_b, for_anyone):
            ref = await a.gw.send("gateway", "flow_authorized", {"ref": ref_value})
            assert await a.gw.recv() == reply("gateway", ref, "error", invalid)
            ready = {"ref": ref_value, "gateway_payload": "X"}
            ref = await a.gw.send("gateway", "connection_ready", ready)
            assert await a.gw.recv() == reply("gateway", ref, "error", invalid)
        await _quiet(a.client, a.gw, legacy, b.gw, b.client)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.3)
    assert await run_sync(_rows, a.setup, b.setup) == before
