"""The gateway socket against a live daphne: ICE candidates and the other client messages
(protocol.md §7 scenario 67, legacy pushes, the reject-access hook), relays (§4.4, gateway side)
and the periodic jobs that expire flows and tokens (§5.7, §6.1). Every frame is asserted whole.

Shared setup: gateways/tests/_sockets_gateway.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Token
from accounts.services.accounts import account_update_system
from gateways import presence, wire
from gateways.consumers.base import device_group
from gateways.crypto import sign_ref
from gateways.tests._sockets_gateway import (
    authorize,
    delete_atomically,
    expiry_updated,
    gw_frame,
    join_gateway,
    make_flow,
    make_setup,
    reject,
    resource,
    send_to_gateway,
    wait_for,
)
from gateways.tests.sockets import (
    RELAY_PATH,
    RELAY_UA,
    public_key,
    stamp_secret,
)
from gateways.turn import GATEWAY_CREDENTIALS_SECONDS, turn_credentials
from resources.models import Flow
from tests.live import frame, reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# ------------------------------------------------------------------ 67 and the other messages


def _by_resource(authorization: dict[str, Any]) -> str:
    return str(authorization["resource_id"])


async def test_67_ice_candidates_to_every_socket_of_a_client(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    layer = get_channel_layer()
    c = str(setup.client.pk)
    sockets = [await layer.new_channel(), await layer.new_channel()]
    for channel in sockets:
        await layer.group_add(device_group("client", c), channel)
    # Online in its account, as a joined client socket is: only those are sent candidates.
    tracker = presence.PresenceTracker(sockets[0])
    await tracker.track(presence.account_clients_topic(setup.world.account.pk), c, {})
    async with device:
        payload = {"client_ids": [c, "not-a-uuid"], "candidates": ["foo", "bar"]}
        await device.send("gateway", "broadcast_ice_candidates", payload)
        await device.send("gateway", "broadcast_invalidated_ice_candidates", payload)
        for channel in sockets:
            for invalidate in (False, True):
                assert await asyncio.wait_for(layer.receive(channel), 5) == {
                    "type": "client.ice_candidates",
                    "gateway_id": str(gateway.pk),
                    "candidates": ["foo", "bar"],
                    "invalidate": invalidate,
                }
        # No reply either way; nothing for an empty list.
        await device.send(
            "gateway", "broadcast_ice_candidates", {"client_ids": [], "candidates": []}
        )
        await device.expect_nothing(0.3)
    await tracker.untrack_all()


async def test_ice_candidates_from_clients_are_pushed(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    c = str(setup.client.pk)
    async with device:
        for invalidate, event in ((False, "ice_candidates"), (True, "invalidate_ice_candidates")):
            message = {
                "type": "gateway.ice_candidates",
                "client_id": c,
                "candidates": ["foo", "bar"],
                "invalidate": invalidate,
            }
            await send_to_gateway(gateway, message)
            assert await device.recv() == gw_frame(
                event, {"client_id": c, "candidates": ["foo", "bar"]}
            )


async def test_legacy_pushes_are_cached(live) -> None:
    """`request_connection` / `allow_access` reach the gateway as given and enter its cache
    (the `init` after a slug change lists them); `connection_ready` answers the client."""
    setup = await run_sync(make_setup)
    world = setup.world
    device, gateway, _ = await join_gateway(live, world)
    layer = get_channel_layer()
    client_channel = await layer.new_channel()
    rcidr = await run_sync(resource, world, type="cidr", address="192.168.1.0/28", ip_stack=None)
    async with device:
        f1 = await run_sync(make_flow, setup, gateway)
        f2 = await run_sync(make_flow, setup, gateway, resource=rcidr)
        ref = sign_ref(
            {
                "client_channel": client_channel,
                "client_id": str(setup.client.pk),
                "resource_id": str(setup.rdns.pk),
                "gateway_id": str(gateway.pk),
                "client_ref": 4,
                "client_join_ref": None,
            }
        )
        request = wire.request_connection(
            ref=ref,
            resource=wire.gateway_resource_view(setup.rdns),
            client=setup.client,
            client_payload={"ice_parameters": {"username": "u", "password": "p"}},
            client_preshared_key=public_key(),
            expires_at=f1.expires_at,
        )
        allow = wire.allow_access(
            ref="r",
            client=setup.client,
            resource=wire.gateway_resource_view(rcidr),
            expires_at=f2.expires_at,
            payload=None,
        )
        for kind, flow, payload in (
            ("request_connection", f1, request),
            ("allow_access", f2, allow),
        ):
            await send_to_gateway(
                gateway,
                {
                    "type": f"gateway.{kind}",
                    "client_id": str(setup.client.pk),
                    "resource_id": str(flow.resource_id),
                    "flow_id": str(flow.pk),
                    "expires_at": wire.unix(flow.expires_at),
                    "payload": payload,
                },
            )
            assert await device.recv() == gw_frame(kind, payload)

        ready = {"ref": ref, "gateway_payload": "X"}
        frame_ref = await device.send("gateway", "connection_ready", ready)
        assert await device.recv() == reply("gateway", frame_ref)
        assert await asyncio.wait_for(layer.receive(client_channel), 5) == {
            "type": "client.connection_ready",
            "client_ref": 4,
            "client_join_ref": None,
            "response": {
                "resource_id": str(setup.rdns.pk),
                "persistent_keepalive": 25,
                "gateway_public_key": gateway.public_key,
                "gateway_payload": "X",
            },
        }

        await run_sync(account_update_system, account=setup.account, slug="acme_2")
        init = await device.recv()
        assert sorted(init["payload"]["authorizations"], key=_by_resource) == sorted(
            [
                {
                    "client_id": str(setup.client.pk),
                    "resource_id": str(f.resource_id),
                    "expires_at": wire.unix(f.expires_at),
                }
                for f in (f1, f2)
            ],
            key=_by_resource,
        )


async def test_reject_access_hook(live) -> None:
    """§5.8: `manage.py reject_access` makes the gateway drop one pair (and forget it)."""
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(
            call_command, "reject_access", str(gateway.pk), str(setup.client.pk), str(setup.rdns.pk)
        )
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        # Forgotten: the flow's deletion later means nothing to this gateway.
        await run_sync(delete_atomically, Flow.objects.filter(pk=flow.pk))
        await device.expect_nothing(0.5)


# ------------------------------------------------------------------ relays (§4.4, gateway side)


async def test_relays_in_init_and_relays_presence(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    relay_device = live.device()
    await relay_device.connect(RELAY_PATH, world.relay_params(), {"User-Agent": RELAY_UA})
    secret = stamp_secret()
    assert await relay_device.join("relay", {"stamp_secret": secret}) == reply("relay", 0)
    assert await relay_device.recv() == frame("relay", "init", {})
    from gateways.models import Relay

    relay = Relay.objects.get(account__isnull=True)

    async def relay_online() -> bool:
        found = await presence.list_presences(presence.GLOBAL_RELAYS)
        return str(relay.pk) in found

    await wait_for(relay_online)
    params = world.gateway_params()
    device, _gateway, init = await join_gateway(live, world, params=params)
    async with device:
        relays = init["payload"]["relays"]
        expires_at = relays[0]["expires_at"]
        assert abs(expires_at - (time.time() + GATEWAY_CREDENTIALS_SECONDS)) < 60
        username, password = turn_credentials(params["public_key"], secret, expires_at)
        common = {
            "id": str(relay.pk),
            "type": "turn",
            "username": username,
            "password": password,
            "expires_at": expires_at,
        }
        assert relays == [
            {**common, "addr": "172.28.0.101:3478"},
            {**common, "addr": "[172:28::101]:3478"},
        ]
        await relay_device.close()
        # Debounced (RELAYS_PRESENCE_DEBOUNCE_MS=300 in the test server), then reported.
        assert await device.recv(timeout=10) == gw_frame(
            "relays_presence", {"disconnected_ids": [str(relay.pk)], "connected": []}
        )


# ------------------------------------------------------------------ tasks (§5.7, §6.1)


async def test_expired_flows_job_rejects_on_the_gateway(live) -> None:
    from resources.tasks import flows_delete_expired

    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway, expires_in=timedelta(seconds=1))
        keep = await run_sync(make_flow, setup, gateway, expires_in=timedelta(hours=1))
        await authorize(device, setup, gateway, flow)
        await authorize(device, setup, gateway, keep)
        await asyncio.sleep(1.2)
        assert await run_sync(flows_delete_expired) == 1
        # Another flow remains for the pair: its expiry, then nothing.
        assert await device.recv() == expiry_updated(
            setup.client.pk, setup.rdns.pk, keep.expires_at
        )
        await run_sync(
            Flow.objects.filter(pk=keep.pk).update, expires_at=timezone.now() - timedelta(seconds=1)
        )
        await authorize(device, setup, gateway, Flow.objects.get(pk=keep.pk))
        # §9 item 13: an expired flow is never re-authorised (no expiry update in the past).
        assert await run_sync(flows_delete_expired) == 1
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        await device.expect_nothing(0.3)


async def test_expired_tokens_job_closes_sockets_and_rejects_flows(live) -> None:
    from accounts.tasks import tokens_delete_expired

    setup = await run_sync(make_setup)
    world = setup.world
    device, gateway, _ = await join_gateway(live, world)
    client_socket = live.device()
    await client_socket.connect("/client/websocket", world.client_params())
    async with device, client_socket:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(
            Token.objects.filter(pk=setup.token.pk).update,
            expires_at=timezone.now() - timedelta(seconds=1),
        )
        assert await run_sync(tokens_delete_expired) == 1
        assert await client_socket.expect_closed() == []
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        assert not Token.objects.filter(pk=setup.token.pk).exists()
        assert not Flow.objects.exists()
        ref = await device.send("phoenix", "heartbeat", {})
        assert await device.recv() == reply("phoenix", ref)
