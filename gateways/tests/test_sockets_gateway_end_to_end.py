"""End-to-end flows through a real client socket and a real gateway socket on a live daphne
(protocol.md §7 scenarios 45-48, 52, 53, 67, 70, and the portal's credential vectors). Every
frame is asserted whole.

Shared setup: gateways/tests/_sockets_gateway.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from django.core.management import call_command

from gateways import presence, wire
from gateways.crypto import pair_credentials
from gateways.models import Client, Gateway
from gateways.tests._sockets_gateway import (
    FIXTURES,
    delete_atomically,
    gw_frame,
    join_gateway,
    make_setup,
    reject,
    resource,
    wait_for,
)
from gateways.tests.factories import GatewayFactory, SiteFactory
from gateways.tests.sockets import (
    World,
    public_key,
)
from resources.models import Flow, Resource
from resources.services.policies import policy_delete
from resources.tests.factories import ClientFactory, PolicyFactory
from tests.live import DEVICE_HEADERS, Device, frame, reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# ------------------------------------------------------------------ end to end: client ⇄ gateway

HEADLESS_UA = "Ubuntu/22.04 headless-client/1.5.4"


async def join_client(
    live, world: World, *, ua: str = HEADLESS_UA
) -> tuple[Device, Client, dict[str, Any]]:
    params = world.client_params()
    device = live.device()
    await device.connect("/client/websocket", params, {**DEVICE_HEADERS, "User-Agent": ua})
    assert await device.join("client") == reply("client", 0)
    init = await device.recv()
    assert init["event"] == "init", init
    client = Client.objects.get(external_id=params["external_id"])
    return device, client, init


def client_frame(event: str, payload: Any) -> dict[str, Any]:
    return frame("client", event, payload)


async def create_flow(client: Device, resource: Resource, connected: Sequence[Any] = ()) -> None:
    payload = {
        "resource_id": str(resource.pk),
        "connected_gateway_ids": [str(g) for g in connected],
    }
    await client.send("client", "create_flow", payload)


def flow_created_frame(resource: Resource, gateway: Gateway, client: Client) -> dict[str, Any]:
    psk, ice = pair_credentials(client, gateway)
    return client_frame(
        "flow_created",
        {
            "resource_id": str(resource.pk),
            "gateway_id": str(gateway.pk),
            "gateway_group_id": str(gateway.group_id),
            "gateway_public_key": gateway.public_key,
            "gateway_ipv4": gateway.ipv4,
            "gateway_ipv6": gateway.ipv6,
            "preshared_key": psk,
            "client_ice_credentials": ice.client.as_dict(),
            "gateway_ice_credentials": ice.gateway.as_dict(),
        },
    )


async def complete_flow(gw: Device, client: Device) -> dict[str, Any]:
    """The gateway's `authorize_flow` → `flow_authorized` → ok; returns the client's frame."""
    pushed = await gw.expect("authorize_flow")
    ref = await gw.send("gateway", "flow_authorized", {"ref": pushed["payload"]["ref"]})
    assert await gw.recv() == reply("gateway", ref)
    return await client.expect("flow_created")


async def test_45_create_flow_end_to_end(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    expiry = wire.unix(setup.token.expires_at)
    gw, gateway, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world)
    async with gw, client:
        await create_flow(client, setup.rdns)
        pushed = await gw.recv()
        flow = Flow.objects.get()
        assert (flow.client_id, flow.resource_id, flow.gateway_id) == (
            row.pk,
            setup.rdns.pk,
            gateway.pk,
        )
        assert (flow.policy_id, flow.token_id) == (setup.policy.pk, setup.token.pk)
        psk, ice = pair_credentials(row, gateway)
        assert len(psk) == 44
        assert [len(ice.client.username), len(ice.client.password)] == [4, 22]
        assert [len(ice.gateway.username), len(ice.gateway.password)] == [4, 22]
        assert ice.client != ice.gateway
        ref = pushed["payload"]["ref"]
        assert isinstance(ref, str)
        assert pushed == gw_frame(
            "authorize_flow",
            {
                "ref": ref,
                "resource": {
                    "id": str(setup.rdns.pk),
                    "type": "dns",
                    "address": "*.httpbin",
                    "name": "httpbin",
                    "filters": [{"protocol": "tcp", "port_range_start": 80, "port_range_end": 80}],
                },
                "client": {
                    "id": str(row.pk),
                    "public_key": row.public_key,
                    "preshared_key": psk,
                    "ipv4": row.ipv4,
                    "ipv6": row.ipv6,
                },
                "client_ice_credentials": ice.client.as_dict(),
                "gateway_ice_credentials": ice.gateway.as_dict(),
                "expires_at": expiry,
            },
        )
        await client.expect_nothing(0.2)  # no phx_reply for create_flow
        frame_ref = await gw.send("gateway", "flow_authorized", {"ref": ref})
        assert await gw.recv() == reply("gateway", frame_ref)
        assert await client.recv() == flow_created_frame(setup.rdns, gateway, row)
        # The flow is in the gateway's cache: its deletion reaches the gateway (§5.5).
        await run_sync(policy_delete, subject=setup.admin(), policy=setup.policy)
        assert await gw.expect("reject_access") == reject(row.pk, setup.rdns.pk)


async def test_46_version_compatibility(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    old, _, _ = await join_gateway(live, world, ua="Linux/24.04 connlib/1.0.412")
    client, row, _ = await join_client(live, world, ua="iOS/12.7 (iPhone) connlib/1.4.55")
    async with old, client:
        await create_flow(client, setup.rdns)
        assert await client.recv() == client_frame(
            "flow_creation_failed", {"resource_id": str(setup.rdns.pk), "reason": "offline"}
        )
        new, gateway, _ = await join_gateway(live, world, ua="Linux/24.04 connlib/1.4.11")
        async with new:
            await create_flow(client, setup.rdns)
            assert await complete_flow(new, client) == flow_created_frame(setup.rdns, gateway, row)
            await old.expect_nothing(0.2)


async def test_47_prefer_connected_gateway(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    gw1, gateway1, _ = await join_gateway(live, world)
    gw2, gateway2, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world)
    async with gw1, gw2, client:
        await create_flow(client, setup.rdns, [gateway2.pk])
        assert await complete_flow(gw2, client) == flow_created_frame(setup.rdns, gateway2, row)
        assert Flow.objects.get().gateway_id == gateway2.pk
        await create_flow(client, setup.rdns, [gateway1.pk])
        assert await complete_flow(gw1, client) == flow_created_frame(setup.rdns, gateway1, row)
        assert Flow.objects.latest("inserted_at").gateway_id == gateway1.pk
        await gw1.expect_nothing(0.2)
        await gw2.expect_nothing(0.1)


async def test_48_deterministic_credentials(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    gw, gateway, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world)
    async with gw, client:
        pushed = []
        for _attempt in range(2):
            await create_flow(client, setup.rdns, [gateway.pk])
            pushed.append((await gw.recv())["payload"])
        first, second = pushed
        for key in ("client_ice_credentials", "gateway_ice_credentials"):
            assert first[key] == second[key]
        assert first["client"]["preshared_key"] == second["client"]["preshared_key"]
        assert Flow.objects.count() == 2
        # Both answers give the client the same credentials.
        for payload in pushed:
            ref = await gw.send("gateway", "flow_authorized", {"ref": payload["ref"]})
            assert await gw.recv() == reply("gateway", ref)
            assert await client.recv() == flow_created_frame(setup.rdns, gateway, row)


async def test_52_legacy_request_connection_end_to_end(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    params = world.gateway_params()
    offline, gateway, _ = await join_gateway(live, world, params=params)
    await offline.close()
    elsewhere = await run_sync(
        lambda: GatewayFactory(account=world.account, group=SiteFactory(account=world.account))
    )
    client, row, _ = await join_client(live, world, ua="iOS/12.7 (iPhone) connlib/1.3.0")
    request = {
        "gateway_id": str(gateway.pk),
        "resource_id": str(setup.rdns.pk),
        "client_preshared_key": public_key(),
        "client_payload": {
            "ice_parameters": {"username": "abcd", "password": "x" * 22},
            "domain": {"name": "api.httpbin", "proxy_ips": ["100.96.0.1"]},
        },
    }
    async with client:

        async def offline_gone() -> bool:
            found = await presence.list_presences(presence.account_gateways_topic(world.account.pk))
            return str(gateway.pk) not in found

        await wait_for(offline_gone)
        ref = await client.send("client", "request_connection", request)
        assert await client.recv() == reply("client", ref, "error", {"reason": "offline"})
        other_site = {**request, "gateway_id": str(elsewhere.pk)}
        ref = await client.send("client", "request_connection", other_site)
        assert await client.recv() == reply("client", ref, "error", {"reason": "not_found"})

        gw, gateway, _ = await join_gateway(live, world, params=params)
        async with gw:
            client_ref = await client.send("client", "request_connection", request)
            pushed = await gw.recv()
            flow = Flow.objects.get()
            assert pushed == gw_frame(
                "request_connection",
                {
                    "ref": pushed["payload"]["ref"],
                    "resource": {
                        "id": str(setup.rdns.pk),
                        "type": "dns",
                        "address": "*.httpbin",
                        "name": "httpbin",
                        "filters": [
                            {"protocol": "tcp", "port_range_start": 80, "port_range_end": 80}
                        ],
                    },
                    "client": {
                        "id": str(row.pk),
                        "payload": request["client_payload"],
                        "peer": {
                            "persistent_keepalive": 25,
                            "public_key": row.public_key,
                            "preshared_key": request["client_preshared_key"],
                            "ipv4": row.ipv4,
                            "ipv6": row.ipv6,
                        },
                    },
                    "expires_at": wire.unix(flow.expires_at),
                },
            )
            await client.expect_nothing(0.2)
            ready = {"ref": pushed["payload"]["ref"], "gateway_payload": "X"}
            ref = await gw.send("gateway", "connection_ready", ready)
            assert await gw.recv() == reply("gateway", ref)
            assert await client.recv() == reply(
                "client",
                client_ref,
                "ok",
                {
                    "resource_id": str(setup.rdns.pk),
                    "persistent_keepalive": 25,
                    "gateway_public_key": gateway.public_key,
                    "gateway_payload": "X",
                },
            )
            # Cached on the gateway: deleting the flow's policy revokes it.
            await run_sync(policy_delete, subject=setup.admin(), policy=setup.policy)
            assert await gw.recv() == reject(row.pk, setup.rdns.pk)


async def test_53_legacy_reuse_connection_end_to_end(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    gw, gateway, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world, ua="iOS/12.7 (iPhone) connlib/1.3.0")
    async with gw, client:
        dns = {"name": "api.httpbin", "proxy_ips": ["100.96.0.1"]}
        request = {"gateway_id": str(gateway.pk), "resource_id": str(setup.rdns.pk), "payload": dns}
        await client.send("client", "reuse_connection", request)
        pushed = await gw.recv()
        flow = Flow.objects.get()
        assert pushed == gw_frame(
            "allow_access",
            {
                "ref": pushed["payload"]["ref"],
                "client_id": str(row.pk),
                "resource": {
                    "id": str(setup.rdns.pk),
                    "type": "dns",
                    "address": "*.httpbin",
                    "name": "httpbin",
                    "filters": [{"protocol": "tcp", "port_range_start": 80, "port_range_end": 80}],
                },
                "expires_at": wire.unix(flow.expires_at),
                "payload": dns,
                "client_ipv4": row.ipv4,
                "client_ipv6": row.ipv6,
            },
        )
        await client.expect_nothing(0.5)  # §9 item 10: never answered on success
        await run_sync(delete_atomically, Flow.objects.filter(pk=flow.pk))
        # Re-authorised under the same policy (still granted): an expiry update.
        assert (await gw.recv())["event"] == "access_authorization_expiry_updated"


async def test_67_ice_candidates_gateway_to_client_end_to_end(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    gw, gateway, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world)
    async with gw, client:
        payload = {"client_ids": [str(row.pk)], "candidates": ["foo", "bar"]}
        await gw.send("gateway", "broadcast_ice_candidates", payload)
        assert await client.recv() == client_frame(
            "ice_candidates", {"gateway_id": str(gateway.pk), "candidates": ["foo", "bar"]}
        )
        await gw.send("gateway", "broadcast_invalidated_ice_candidates", payload)
        assert await client.recv() == client_frame(
            "invalidate_ice_candidates",
            {"gateway_id": str(gateway.pk), "candidates": ["foo", "bar"]},
        )
        # And the other way round (scenarios 49, 50).
        ice = {"gateway_ids": [str(gateway.pk)], "candidates": ["foo", "bar"]}
        await client.send("client", "broadcast_ice_candidates", ice)
        assert await gw.recv() == gw_frame(
            "ice_candidates", {"client_id": str(row.pk), "candidates": ["foo", "bar"]}
        )
        await gw.expect_nothing(0.2)
        await client.expect_nothing(0.1)


async def test_70_recreate_flow_after_reject(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    rcidr = await run_sync(
        resource, world, type="cidr", address="192.168.1.0/28", ip_stack=None, name="lan"
    )
    await run_sync(PolicyFactory, account=world.account, actor_group=setup.g1, resource=rcidr)
    gw, gateway, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world)
    async with gw, client:
        created = {}
        for target in (setup.rdns, rcidr):
            await create_flow(client, target, [gateway.pk] if target is rcidr else [])
            created[target.pk] = await complete_flow(gw, client)
            assert created[target.pk] == flow_created_frame(target, gateway, row)
        before = created[rcidr.pk]["payload"]
        await run_sync(call_command, "reject_access", str(gateway.pk), str(row.pk), str(rcidr.pk))
        assert await gw.recv() == reject(row.pk, rcidr.pk)
        await create_flow(client, rcidr, [gateway.pk])
        pushed = await gw.recv()
        assert pushed["event"] == "authorize_flow"
        assert pushed["payload"]["resource"]["id"] == str(rcidr.pk)
        # The same PSK and ICE credentials as the first time: connlib keeps the connection.
        assert pushed["payload"]["client"]["preshared_key"] == before["preshared_key"]
        for key in ("client_ice_credentials", "gateway_ice_credentials"):
            assert pushed["payload"][key] == before[key]
        ref = await gw.send("gateway", "flow_authorized", {"ref": pushed["payload"]["ref"]})
        assert await gw.recv() == reply("gateway", ref)
        assert await client.recv() == flow_created_frame(rcidr, gateway, row)
        await gw.expect_nothing(0.2)
        await client.expect_nothing(0.1)


async def test_48_credentials_match_the_portal_vectors(live) -> None:
    vectors = json.loads((FIXTURES / "portal_crypto_test_vectors.json").read_text())
    psk_vector, ice_vector = vectors["preshared_key"], vectors["ice_credentials"]
    setup = await run_sync(make_setup)
    world = setup.world
    gateway_params = world.gateway_params(public_key=psk_vector["gateway_public_key"])
    client_params = world.client_params(public_key=psk_vector["client_public_key"])

    def rows() -> None:
        GatewayFactory(
            id=psk_vector["gateway_id"],
            account=world.account,
            group=world.site,
            external_id=gateway_params["external_id"],
            public_key=psk_vector["gateway_public_key"],
            psk_base=bytes.fromhex(psk_vector["gateway_psk_base_hex"]),
        )
        ClientFactory(
            id=psk_vector["client_id"],
            account=world.account,
            actor=world.actor,
            identity=world.identity,
            external_id=client_params["external_id"],
            public_key=psk_vector["client_public_key"],
            psk_base=bytes.fromhex(psk_vector["client_psk_base_hex"]),
        )

    await run_sync(rows)
    gw, gateway, _ = await join_gateway(live, world, params=gateway_params)
    client = live.device()
    await client.connect(
        "/client/websocket", client_params, {**DEVICE_HEADERS, "User-Agent": HEADLESS_UA}
    )
    assert await client.join("client") == reply("client", 0)
    await client.expect("init")
    async with gw, client:
        assert str(gateway.pk) == psk_vector["gateway_id"]
        await create_flow(client, setup.rdns, [gateway.pk])
        pushed = (await gw.recv())["payload"]
        assert pushed["client"]["id"] == psk_vector["client_id"]
        assert pushed["client"]["preshared_key"] == psk_vector["expected"]
        assert pushed["client_ice_credentials"] == ice_vector["expected"]["client"]
        assert pushed["gateway_ice_credentials"] == ice_vector["expected"]["gateway"]
        ref = await gw.send("gateway", "flow_authorized", {"ref": pushed["ref"]})
        assert await gw.recv() == reply("gateway", ref)
        created = (await client.recv())["payload"]
        assert created["preshared_key"] == psk_vector["expected"]
        assert created["client_ice_credentials"] == ice_vector["expected"]["client"]
        assert created["gateway_ice_credentials"] == ice_vector["expected"]["gateway"]
