"""The client socket against a live daphne: `create_flow` (protocol.md §7 scenarios 42-44 and
the client's half of 45), asserting whole frames.

The gateway side of a flow belongs to the gateway socket's tests; here the client's half of that
contract is checked by listening on the gateway's channel-layer group (`gateway.<id>`) and by
answering as a gateway would (`client.flow_authorized` to the client's channel / group).

Shared setup: gateways/tests/_sockets_client.py.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateways import crypto, wire
from gateways.consumers.base import device_group
from gateways.models import Client, Gateway
from gateways.tests._sockets_client import (
    HEADLESS_UA,
    RDNS_FILTERS_VIEW,
    ClientWorld,
    GroupListener,
    client_world,
    gateway_online,
    join_client,
    push,
)
from resources.models import Flow
from tests.live import reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# ------------------------------------------------------------------ 42-44: create_flow failures


async def test_42_create_flow_unknown_resource(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        missing = str(uuid.uuid4())
        await joined.device.send(
            "client", "create_flow", {"resource_id": missing, "connected_gateway_ids": []}
        )
        assert await joined.device.recv() == push(
            "flow_creation_failed", {"resource_id": missing, "reason": "not_found"}
        )
        await joined.device.expect_nothing(0.3)


@pytest.mark.parametrize("user_agent", [None, HEADLESS_UA], ids=["1.3", "1.5"])
async def test_43_create_flow_gateway_offline(live, user_agent) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw, user_agent=user_agent)
    async with joined.device:
        await joined.device.send(
            "client",
            "create_flow",
            {"resource_id": str(cw.rdns.pk), "connected_gateway_ids": [str(cw.gateway.pk)]},
        )
        assert await joined.device.recv() == push(
            "flow_creation_failed", {"resource_id": str(cw.rdns.pk), "reason": "offline"}
        )
        await joined.device.expect_nothing(0.3)
        assert not Flow.objects.exists()


async def test_44_create_flow_without_policy(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        cw.extra["ungranted"] = cw.resource(cw.site, name="ungranted", address="u.example.com")
        return cw

    cw = await run_sync(setup)
    async with gateway_online(live, cw) as (_gw_device, gateway):
        joined = await join_client(live, cw, user_agent=HEADLESS_UA)
        async with joined.device:
            rid = str(cw.extra["ungranted"].pk)
            await joined.device.send(
                "client",
                "create_flow",
                {"resource_id": rid, "connected_gateway_ids": [str(gateway.pk)]},
            )
            assert await joined.device.recv() == push(
                "flow_creation_failed", {"resource_id": rid, "reason": "not_found"}
            )
            # Conditions unmet at list time (Rnc) and no site (Roff): not connectable either.
            for resource in (cw.rnc, cw.roff):
                await joined.device.send(
                    "client",
                    "create_flow",
                    {"resource_id": str(resource.pk), "connected_gateway_ids": []},
                )
                assert await joined.device.recv() == push(
                    "flow_creation_failed", {"resource_id": str(resource.pk), "reason": "not_found"}
                )


async def test_create_flow_forbidden_when_the_window_closed(live) -> None:
    """A resource told to the client whose only policy no longer holds *now*: `forbidden` with
    the violated properties (§3.1.6), until the next recompute removes it."""
    now = datetime.now(UTC)
    if now.hour == 23 and now.minute >= 59:
        pytest.skip("the window would cross midnight")
    end = now + timedelta(seconds=4)
    if end.date() != now.date():
        pytest.skip("the window would cross midnight")
    day = "MTWRFSU"[now.weekday()]

    def setup() -> ClientWorld:
        cw = client_world()
        r11 = cw.resource(cw.site, name="r11", address="r11.example.com")
        cw.grant(
            r11,
            conditions=[
                {
                    "property": "current_utc_datetime",
                    "operator": "is_in_day_of_week_time_ranges",
                    "values": [f"{day}/00:00:00-{end:%H:%M:%S}/UTC"],
                }
            ],
        )
        cw.extra["r11"] = r11
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, rid = joined.device, str(cw.extra["r11"].pk)
    async with device:
        assert rid in {r["id"] for r in joined.init["payload"]["resources"]}
        # The recompute (every 2 s) deletes it once the window closed; a create_flow sent
        # between the end of the window and that recompute is `forbidden`.
        while True:
            await asyncio.sleep(0.1)
            if datetime.now(UTC) > end + timedelta(seconds=1):
                break
        await device.send(
            "client", "create_flow", {"resource_id": rid, "connected_gateway_ids": []}
        )
        got = [await device.recv(5)]
        if got[0]["event"] == "resource_deleted":
            got.append(await device.recv(5))
            assert got[1] == push(
                "flow_creation_failed", {"resource_id": rid, "reason": "not_found"}
            )
        else:
            assert got[0] == push(
                "flow_creation_failed",
                {
                    "resource_id": rid,
                    "reason": "forbidden",
                    "violated_properties": ["current_utc_datetime"],
                },
            )
            assert await device.recv(5) == push("resource_deleted", rid)


# ------------------------------------------------------------------ 45 (client's half): create_flow


async def test_45_contract_authorize_flow_and_flow_created(live) -> None:
    cw = await run_sync(client_world)
    async with gateway_online(live, cw) as (_gw_device, gateway):
        listener = await GroupListener().listen(device_group("gateway", gateway.pk))
        try:
            joined = await join_client(live, cw, user_agent=HEADLESS_UA)
            async with joined.device:
                device, client = joined.device, joined.client
                await device.send(
                    "client",
                    "create_flow",
                    {"resource_id": str(cw.rdns.pk), "connected_gateway_ids": []},
                )
                message = await listener.receive()
                flow = await run_sync(lambda: Flow.objects.get())
                assert (
                    flow.client_id,
                    flow.resource_id,
                    flow.gateway_id,
                    flow.token_id,
                    int(flow.expires_at.timestamp()),
                ) == (client.pk, cw.rdns.pk, gateway.pk, cw.w.client_token_row.pk, cw.expiry)
                assert flow.policy.resource_id == cw.rdns.pk
                client = await run_sync(lambda: Client.objects.get(pk=client.pk))
                gateway = await run_sync(lambda: Gateway.objects.get(pk=gateway.pk))
                psk, ice = crypto.pair_credentials(client, gateway)
                assert len(psk) == 44
                ref = message["payload"]["ref"]
                assert message == {
                    "type": "gateway.authorize_flow",
                    "client_id": str(client.pk),
                    "resource_id": str(cw.rdns.pk),
                    "flow_id": str(flow.pk),
                    "expires_at": cw.expiry,
                    "payload": {
                        "ref": ref,
                        "resource": {
                            "id": str(cw.rdns.pk),
                            "type": "dns",
                            "address": "*.httpbin",
                            "name": "httpbin",
                            "filters": RDNS_FILTERS_VIEW,
                        },
                        "client": {
                            "id": str(client.pk),
                            "public_key": joined.params["public_key"],
                            "preshared_key": psk,
                            "ipv4": str(client.ipv4),
                            "ipv6": str(client.ipv6),
                        },
                        "client_ice_credentials": ice.client.as_dict(),
                        "gateway_ice_credentials": ice.gateway.as_dict(),
                        "expires_at": cw.expiry,
                    },
                }
                data = crypto.verify_ref(ref)
                assert data is not None
                assert {k: v for k, v in data.items() if k != "client_channel"} == {
                    "client_id": str(client.pk),
                    "resource_id": str(cw.rdns.pk),
                    "gateway_id": str(gateway.pk),
                    "preshared_key": psk,
                    "client_ice_credentials": ice.client.as_dict(),
                    "gateway_ice_credentials": ice.gateway.as_dict(),
                }
                assert data["client_channel"].startswith("specific.")
                # No phx_reply for create_flow.
                await device.expect_nothing(0.3)

                # The gateway answers flow_authorized: it hands the client channel flow_created.
                flow_created = wire.flow_created(
                    resource_id=data["resource_id"],
                    gateway=gateway,
                    preshared_key=data["preshared_key"],
                    ice=ice,
                )
                await listener.layer.send(
                    data["client_channel"],
                    {"type": "client.flow_authorized", "payload": flow_created},
                )
                assert await device.recv() == push(
                    "flow_created",
                    {
                        "resource_id": str(cw.rdns.pk),
                        "gateway_id": str(gateway.pk),
                        "gateway_group_id": str(cw.site.pk),
                        "gateway_public_key": gateway.public_key,
                        "gateway_ipv4": str(gateway.ipv4),
                        "gateway_ipv6": str(gateway.ipv6),
                        "preshared_key": psk,
                        "client_ice_credentials": ice.client.as_dict(),
                        "gateway_ice_credentials": ice.gateway.as_dict(),
                    },
                )
                # A repeated create_flow (§5.8) creates another flow with the same credentials.
                await device.send(
                    "client",
                    "create_flow",
                    {"resource_id": str(cw.rdns.pk), "connected_gateway_ids": [str(gateway.pk)]},
                )
                again = await listener.receive()
                assert again["payload"]["client"]["preshared_key"] == psk
                assert again["payload"]["client_ice_credentials"] == ice.client.as_dict()
                assert again["flow_id"] != str(flow.pk)
                assert await run_sync(lambda: Flow.objects.count()) == 2
        finally:
            await listener.close()


async def test_45_end_to_end_through_the_gateway_socket(live) -> None:
    cw = await run_sync(client_world)
    async with gateway_online(live, cw) as (gw_device, gateway):
        joined = await join_client(live, cw, user_agent=HEADLESS_UA)
        async with joined.device:
            await joined.device.send(
                "client",
                "create_flow",
                {"resource_id": str(cw.rdns.pk), "connected_gateway_ids": []},
            )
            authorize = await gw_device.expect("authorize_flow", "gateway")
            client = await run_sync(lambda: Client.objects.get(pk=joined.client.pk))
            gateway = await run_sync(lambda: Gateway.objects.get(pk=gateway.pk))
            psk, ice = crypto.pair_credentials(client, gateway)
            assert authorize["payload"]["client"]["preshared_key"] == psk
            ref = await gw_device.send(
                "gateway", "flow_authorized", {"ref": authorize["payload"]["ref"]}
            )
            assert await gw_device.expect("phx_reply", "gateway", ref=ref) == reply("gateway", ref)
            assert await joined.device.recv() == push(
                "flow_created",
                {
                    "resource_id": str(cw.rdns.pk),
                    "gateway_id": str(gateway.pk),
                    "gateway_group_id": str(cw.site.pk),
                    "gateway_public_key": gateway.public_key,
                    "gateway_ipv4": str(gateway.ipv4),
                    "gateway_ipv6": str(gateway.ipv6),
                    "preshared_key": psk,
                    "client_ice_credentials": ice.client.as_dict(),
                    "gateway_ice_credentials": ice.gateway.as_dict(),
                },
            )


async def test_create_flow_skips_gateways_older_than_1_4(live) -> None:
    """§9 item 9: a 1.3 gateway is inside a 1.4 client's window but cannot `authorize_flow`."""
    cw = await run_sync(client_world)
    async with gateway_online(live, cw, user_agent="Linux/24.04 gateway/1.3.2") as (_d, _gw):
        joined = await join_client(live, cw, user_agent="Ubuntu/22.04 headless-client/1.4.3")
        async with joined.device:
            await joined.device.send(
                "client",
                "create_flow",
                {"resource_id": str(cw.rdns.pk), "connected_gateway_ids": []},
            )
            assert await joined.device.recv() == push(
                "flow_creation_failed", {"resource_id": str(cw.rdns.pk), "reason": "offline"}
            )
