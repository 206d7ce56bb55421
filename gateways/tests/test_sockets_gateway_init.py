"""The gateway socket (protocol.md §3.2, §4.4) against a live daphne: init, presence and the
authorizations sent on reconnect (§7 scenarios 54-56), invalid references (57) and
`flow_authorized`. Every frame is asserted whole.

Shared setup: gateways/tests/_sockets_gateway.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer

from accounts.models import Token
from accounts.services.accounts import account_update_system
from gateways import presence, wire
from gateways.crypto import pair_credentials, sign_ref
from gateways.tests._sockets_gateway import (
    authorize,
    expected_init,
    gw_frame,
    join_gateway,
    make_flow,
    make_setup,
    resource,
    wait_for,
)
from tests.live import reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# ------------------------------------------------------------------ 54-56: init


async def test_54_gateway_init_and_online(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    device, gateway, init = await join_gateway(live, world)
    async with device:
        assert init == expected_init(gateway)
        assert gateway.ipv4 and gateway.ipv6
        gateways = await presence.list_presences(presence.account_gateways_topic(world.account.pk))
        [meta] = gateways[str(gateway.pk)]
        assert abs(meta["online_at"] - time.time()) < 30
        site = await presence.list_presences(presence.group_gateways_topic(world.site.pk))
        token = Token.objects.get(gateway_group=world.site)
        [site_meta] = site[str(gateway.pk)]
        assert site_meta["token_id"] == str(token.pk)
        await device.expect_nothing(0.3)

    async def offline() -> bool:
        found = await presence.list_presences(presence.account_gateways_topic(world.account.pk))
        return str(gateway.pk) not in found

    await wait_for(offline)


async def test_55_authorizations_on_reconnect(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    params = world.gateway_params()
    device, gateway, _ = await join_gateway(live, world, params=params)
    await device.close()
    f1 = await run_sync(make_flow, setup, gateway, expires_in=timedelta(hours=1))
    f2 = await run_sync(make_flow, setup, gateway, expires_in=timedelta(days=1))
    await run_sync(make_flow, setup, gateway, expires_in=-timedelta(minutes=1))  # expired
    rcidr = await run_sync(resource, world, type="cidr", address="192.168.1.0/28", ip_stack=None)
    expired_only = await run_sync(
        make_flow, setup, gateway, resource=rcidr, expires_in=-timedelta(seconds=1)
    )
    assert f1.expires_at < f2.expires_at and expired_only
    device, gateway, init = await join_gateway(live, world, params=params)
    async with device:
        assert init == expected_init(
            gateway,
            authorizations=[
                {
                    "client_id": str(setup.client.pk),
                    "resource_id": str(setup.rdns.pk),
                    "expires_at": wire.unix(f2.expires_at),
                }
            ],
        )
        # A re-join on the same socket reloads the cache the same way.
        ref = await device.send("gateway", "phx_join", None)
        assert await device.recv() == gw_frame("phx_close", {})
        assert await device.recv() == reply("gateway", ref)
        assert await device.recv() == init


async def test_56_slug_change_resends_init(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _init = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(account_update_system, account=setup.account, name="Renamed")
        await device.expect_nothing(0.3)  # a rename is not a slug change
        await run_sync(account_update_system, account=setup.account, slug="new_slug")
        assert await device.recv() == expected_init(
            gateway,
            slug="new_slug",
            authorizations=[
                {
                    "client_id": str(setup.client.pk),
                    "resource_id": str(setup.rdns.pk),
                    "expires_at": wire.unix(flow.expires_at),
                }
            ],
        )
        await device.expect_nothing(0.3)


# ------------------------------------------------------------------ 57: refs


async def test_57_invalid_refs(live) -> None:
    setup = await run_sync(make_setup)
    device, _, _ = await join_gateway(live, setup.world)
    invalid = {"reason": "invalid_ref"}
    async with device:
        ref = await device.send("gateway", "flow_authorized", {"ref": "foo"})
        assert await device.recv() == reply("gateway", ref, "error", invalid)
        payload = {"ref": "foo", "gateway_payload": "bar"}
        ref = await device.send("gateway", "connection_ready", payload)
        assert await device.recv() == reply("gateway", ref, "error", invalid)
        # A signed ref missing what flow_created needs is as invalid as a forged one.
        forged = sign_ref({"client_channel": "x", "resource_id": "y"})
        ref = await device.send("gateway", "flow_authorized", {"ref": forged})
        assert await device.recv() == reply("gateway", ref, "error", invalid)
        # Payloads without the required keys are unknown messages (Elixir pattern matching).
        unknown = {"reason": "unknown_message"}
        ref = await device.send("gateway", "flow_authorized", {})
        assert await device.recv() == reply("gateway", ref, "error", unknown)
        ref = await device.send("gateway", "connection_ready", {"ref": "foo"})
        assert await device.recv() == reply("gateway", ref, "error", unknown)
        ref = await device.send("gateway", "create_flow", {"resource_id": "x"})
        assert await device.recv() == reply("gateway", ref, "error", unknown)
        ref = await device.send("phoenix", "heartbeat", {})
        assert await device.recv() == reply("phoenix", ref)


async def test_flow_authorized_sends_flow_created_to_the_client_channel(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    layer = get_channel_layer()
    client_channel = await layer.new_channel()
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        pushed = await authorize(device, setup, gateway, flow, client_channel=client_channel)
        ref = await device.send("gateway", "flow_authorized", {"ref": pushed["payload"]["ref"]})
        assert await device.recv() == reply("gateway", ref)
        psk, ice = pair_credentials(setup.client, gateway)
        message = await asyncio.wait_for(layer.receive(client_channel), 5)
        assert message == {
            "type": "client.flow_authorized",
            "payload": {
                "resource_id": str(setup.rdns.pk),
                "gateway_id": str(gateway.pk),
                "gateway_group_id": str(setup.world.site.pk),
                "gateway_public_key": gateway.public_key,
                "gateway_ipv4": gateway.ipv4,
                "gateway_ipv6": gateway.ipv6,
                "preshared_key": psk,
                "client_ice_credentials": ice.client.as_dict(),
                "gateway_ice_credentials": ice.gateway.as_dict(),
            },
        }
