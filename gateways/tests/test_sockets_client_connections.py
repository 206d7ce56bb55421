"""The client socket against a live daphne: ICE candidates (protocol.md §7 scenarios 49, 50),
the legacy flow setup (51-53: `prepare_connection`, `request_connection`, `reuse_connection`),
stale flows and presence on join (§3.1.1 step 6), and rolling relay credentials.

The client's half of the gateway contract is checked by listening on the gateway's channel-layer
group (`gateway.<id>`) and by answering as a gateway would (`client.connection_ready`,
`client.ice_candidates` to the client's channel / group).

Shared setup: gateways/tests/_sockets_client.py.
"""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.layers import get_channel_layer

from gateways import crypto, presence, wire
from gateways.consumers.base import device_group
from gateways.models import Client
from gateways.tests._sockets_client import (
    RDNS_FILTERS_VIEW,
    RL1,
    ClientWorld,
    GroupListener,
    client_world,
    gateway_online,
    join_client,
    join_relay,
    push,
    wait_for,
)
from gateways.tests.factories import GatewayFactory, SiteFactory
from gateways.tests.sockets import (
    CLIENT_PATH,
)
from resources.models import Flow, Policy, Resource
from tests.live import DEVICE_HEADERS, frame, reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# ------------------------------------------------------------------ 49, 50: ICE candidates


@pytest.mark.parametrize(
    ("event", "pushed", "invalidate"),
    [
        ("broadcast_ice_candidates", "ice_candidates", False),
        ("broadcast_invalidated_ice_candidates", "invalidate_ice_candidates", True),
    ],
    ids=["49", "50"],
)
async def test_49_50_ice_candidates_to_the_gateway(live, event, pushed, invalidate) -> None:
    cw = await run_sync(client_world)
    async with gateway_online(live, cw) as (gw_device, gateway):
        listener = await GroupListener().listen(device_group("gateway", gateway.pk))
        try:
            joined = await join_client(live, cw)
            async with joined.device:
                device = joined.device
                await device.send("client", event, {"gateway_ids": [], "candidates": ["x"]})
                await device.send(
                    "client",
                    event,
                    {
                        "gateway_ids": [str(gateway.pk), str(cw.gateway.pk), "not-a-uuid"],
                        "candidates": ["foo", "bar"],
                    },
                )
                assert await listener.receive() == {
                    "type": "gateway.ice_candidates",
                    "client_id": str(joined.client.pk),
                    "candidates": ["foo", "bar"],
                    "invalidate": invalidate,
                }
                await listener.nothing(0.3)  # nothing for [] (nor for the offline gateway)
                await device.expect_nothing(0.2)  # no reply either way
                # ... and the gateway socket pushes it (§3.2.6).
                assert await gw_device.expect(pushed, "gateway") == frame(
                    "gateway",
                    pushed,
                    {"client_id": str(joined.client.pk), "candidates": ["foo", "bar"]},
                )
        finally:
            await listener.close()


@pytest.mark.parametrize(
    ("invalidate", "pushed"), [(False, "ice_candidates"), (True, "invalidate_ice_candidates")]
)
async def test_ice_candidates_from_a_gateway(live, invalidate, pushed) -> None:
    """Scenario 67's client half: a gateway's candidates reach every socket of the client."""
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        gateway_id = str(cw.gateway.pk)
        await get_channel_layer().group_send(
            device_group("client", joined.client.pk),
            {
                "type": "client.ice_candidates",
                "gateway_id": gateway_id,
                "candidates": ["foo", "bar"],
                "invalidate": invalidate,
            },
        )
        assert await joined.device.recv() == push(
            pushed, {"gateway_id": gateway_id, "candidates": ["foo", "bar"]}
        )


async def test_integers_beyond_64_bits_get_an_error_reply_and_nothing_is_written(live) -> None:
    """Issue 17: an integer the channel layer cannot pack (≥ 2**64) in ICE candidates or a legacy
    `request_connection` crashed the send and closed the socket (after the flow row was written).
    Now: `unknown_message`, nothing sent or written, and the socket stays usable."""
    cw = await run_sync(client_world)
    async with gateway_online(live, cw) as (_gw_device, gateway):
        listener = await GroupListener().listen(device_group("gateway", gateway.pk))
        try:
            joined = await join_client(live, cw)
            async with joined.device:
                device = joined.device
                unknown = {"reason": "unknown_message"}
                ice = {"gateway_ids": [str(gateway.pk)], "candidates": ["foo", 2**64]}
                ref = await device.send("client", "broadcast_ice_candidates", ice)
                assert await device.recv() == reply("client", ref, "error", unknown)
                request = {
                    "gateway_id": str(gateway.pk),
                    "resource_id": str(cw.rdns.pk),
                    "client_preshared_key": base64.b64encode(secrets.token_bytes(32)).decode(),
                    "client_payload": {"ice_parameters": {"username": "a", "password": 2**64}},
                }
                ref = await device.send("client", "request_connection", request)
                assert await device.recv() == reply("client", ref, "error", unknown)
                await listener.nothing(0.3)
                assert not await run_sync(lambda: Flow.objects.exists())
                # Still open and joined: the same candidates within range go through.
                ice["candidates"] = ["foo", 2**64 - 1]
                await device.send("client", "broadcast_ice_candidates", ice)
                assert (await listener.receive())["candidates"] == ["foo", 2**64 - 1]
        finally:
            await listener.close()


# ------------------------------------------------------------------ 51-53: legacy flow setup


async def test_51_legacy_prepare_connection(live) -> None:
    cw = await run_sync(client_world)
    async with gateway_online(live, cw) as (_gw_device, gateway):
        joined = await join_client(live, cw)
        async with joined.device:
            device = joined.device
            ref = await device.send("client", "prepare_connection", {"resource_id": "nope"})
            assert await device.recv() == reply("client", ref, "error", {"reason": "not_found"})
            ref = await device.send(
                "client", "prepare_connection", {"resource_id": str(cw.rdns.pk)}
            )
            assert await device.recv() == reply(
                "client",
                ref,
                "ok",
                {
                    "resource_id": str(cw.rdns.pk),
                    "gateway_id": str(gateway.pk),
                    "gateway_group_id": str(cw.site.pk),
                    "gateway_remote_ip": "189.172.73.200",
                },
            )
            assert not Flow.objects.exists()


async def test_51_legacy_prepare_connection_offline(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        ref = await joined.device.send(
            "client", "prepare_connection", {"resource_id": str(cw.rdns.pk)}
        )
        assert await joined.device.recv() == reply("client", ref, "error", {"reason": "offline"})


async def test_52_contract_legacy_request_connection(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        other_site = SiteFactory(account=cw.account, name="other")
        cw.extra["foreign"] = GatewayFactory(group=other_site, account=cw.account)
        return cw

    cw = await run_sync(setup)
    psk = base64.b64encode(secrets.token_bytes(32)).decode()
    client_payload = {
        "ice_parameters": {"username": "abcd", "password": "p" * 22},
        "domain": {"name": "api.httpbin", "proxy_ips": ["100.96.0.1"]},
    }

    def request(gateway_id: Any) -> dict[str, Any]:
        return {
            "gateway_id": str(gateway_id),
            "resource_id": str(cw.rdns.pk),
            "client_preshared_key": psk,
            "client_payload": client_payload,
        }

    joined = await join_client(live, cw)
    async with joined.device:
        device = joined.device
        # Offline gateway, then a gateway of another site.
        ref = await device.send("client", "request_connection", request(cw.gateway.pk))
        assert await device.recv() == reply("client", ref, "error", {"reason": "offline"})
        ref = await device.send("client", "request_connection", request(cw.extra["foreign"].pk))
        assert await device.recv() == reply("client", ref, "error", {"reason": "not_found"})
        # Missing keys: unknown_message.
        ref = await device.send("client", "request_connection", {"gateway_id": "x"})
        assert await device.recv() == reply("client", ref, "error", {"reason": "unknown_message"})

        async with gateway_online(live, cw) as (_gw_device, gateway):
            listener = await GroupListener().listen(device_group("gateway", gateway.pk))
            try:
                ref = await device.send("client", "request_connection", request(gateway.pk))
                message = await listener.receive()
                flow = await run_sync(lambda: Flow.objects.get())
                client = joined.client
                sent = message["payload"]
                assert message == {
                    "type": "gateway.request_connection",
                    "client_id": str(client.pk),
                    "resource_id": str(cw.rdns.pk),
                    "flow_id": str(flow.pk),
                    "expires_at": cw.expiry,
                    "payload": {
                        "ref": sent["ref"],
                        "resource": {
                            "id": str(cw.rdns.pk),
                            "type": "dns",
                            "address": "*.httpbin",
                            "name": "httpbin",
                            "filters": RDNS_FILTERS_VIEW,
                        },
                        "client": {
                            "id": str(client.pk),
                            "payload": client_payload,
                            "peer": {
                                "persistent_keepalive": 25,
                                "public_key": joined.params["public_key"],
                                "preshared_key": psk,
                                "ipv4": str(client.ipv4),
                                "ipv6": str(client.ipv6),
                            },
                        },
                        "expires_at": cw.expiry,
                    },
                }
                data = crypto.verify_ref(sent["ref"])
                assert data is not None
                assert (
                    data["client_id"],
                    data["resource_id"],
                    data["gateway_id"],
                    data["client_ref"],
                ) == (str(client.pk), str(cw.rdns.pk), str(gateway.pk), ref)
                await device.expect_nothing(0.3)  # answered only on connection_ready
                # The gateway's connection_ready answers the client's original frame.
                await listener.layer.send(
                    data["client_channel"],
                    {
                        "type": "client.connection_ready",
                        "client_ref": data["client_ref"],
                        "response": wire.request_connection_reply(
                            resource_id=data["resource_id"],
                            gateway_public_key=gateway.public_key,
                            gateway_payload="X",
                        ),
                    },
                )
                assert await device.recv() == reply(
                    "client",
                    ref,
                    "ok",
                    {
                        "resource_id": str(cw.rdns.pk),
                        "persistent_keepalive": 25,
                        "gateway_public_key": gateway.public_key,
                        "gateway_payload": "X",
                    },
                )
            finally:
                await listener.close()


async def test_53_contract_legacy_reuse_connection(live) -> None:
    cw = await run_sync(client_world)
    async with gateway_online(live, cw) as (_gw_device, gateway):
        listener = await GroupListener().listen(device_group("gateway", gateway.pk))
        try:
            joined = await join_client(live, cw)
            async with joined.device:
                device, client = joined.device, joined.client
                resolve = {"name": "api.httpbin", "proxy_ips": ["100.96.0.1"]}
                await device.send(
                    "client",
                    "reuse_connection",
                    {
                        "gateway_id": str(gateway.pk),
                        "resource_id": str(cw.rdns.pk),
                        "payload": resolve,
                    },
                )
                message = await listener.receive()
                flow = await run_sync(lambda: Flow.objects.get())
                assert message == {
                    "type": "gateway.allow_access",
                    "client_id": str(client.pk),
                    "resource_id": str(cw.rdns.pk),
                    "flow_id": str(flow.pk),
                    "expires_at": cw.expiry,
                    "payload": {
                        "ref": message["payload"]["ref"],
                        "client_id": str(client.pk),
                        "resource": {
                            "id": str(cw.rdns.pk),
                            "type": "dns",
                            "address": "*.httpbin",
                            "name": "httpbin",
                            "filters": RDNS_FILTERS_VIEW,
                        },
                        "expires_at": cw.expiry,
                        "payload": resolve,
                        "client_ipv4": str(client.ipv4),
                        "client_ipv6": str(client.ipv6),
                    },
                }
                assert isinstance(message["payload"]["ref"], str)
                await device.expect_nothing(0.5)  # §9 item 10: no reply on success
        finally:
            await listener.close()


# ------------------------------------------------------------------ §3.1.1 step 6, presence


async def test_stale_flows_are_deleted_on_join_and_presence_is_tracked(live) -> None:
    def setup() -> tuple[ClientWorld, Client, Flow, Flow]:
        cw = client_world()
        # A client row of this device from an earlier session, with a flow for a resource it
        # may still reach and one for a resource it no longer may (Rnc).
        params = cw.w.client_params()
        client = Client.objects.create(
            external_id=params["external_id"],
            name="old",
            public_key=params["public_key"],
            last_seen_user_agent=DEVICE_HEADERS["User-Agent"],
            last_seen_remote_ip="189.172.73.153",
            last_seen_version="1.3.0",
            last_seen_at=datetime.now(UTC),
            actor=cw.w.actor,
            identity=cw.w.identity,
            account=cw.account,
        )
        membership = cw.g1.memberships.get(actor=cw.w.actor)

        def flow(resource: Resource) -> Flow:
            return Flow.objects.create(
                account=cw.account,
                policy=Policy.objects.get(resource=resource),
                client=client,
                gateway=cw.gateway,
                resource=resource,
                token=cw.w.client_token_row,
                actor_group_membership=membership,
                client_remote_ip="189.172.73.153",
                client_user_agent="test",
                gateway_remote_ip="203.0.113.1",
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )

        cw.extra["params"] = params
        return cw, client, flow(cw.rdns), flow(cw.rnc)

    cw, client, kept, _stale = await run_sync(setup)
    headers = dict(DEVICE_HEADERS)
    device = live.device()
    await device.connect(CLIENT_PATH, cw.extra["params"], headers)
    async with device:
        assert await device.join("client") == reply("client", 0)
        assert (await device.recv())["event"] == "init"
        assert set(Flow.objects.values_list("pk", flat=True)) == {kept.pk}
        account_topic = presence.account_clients_topic(cw.account.pk)
        actor_topic = presence.actor_clients_topic(cw.w.actor.pk)
        [online] = (await presence.list_presences(account_topic))[str(client.pk)]
        [by_actor] = (await presence.list_presences(actor_topic))[str(client.pk)]
        assert isinstance(online["online_at"], int)
        assert by_actor["token_id"] == str(cw.w.client_token_row.pk)
    await wait_for(lambda: _absent(presence.account_clients_topic(cw.account.pk), str(client.pk)))
    await presence.aclose()


async def _absent(topic: str, key: str) -> bool:
    return key not in await presence.list_presences(topic)


async def test_token_without_expiry_gets_rolling_relay_credentials(live) -> None:
    """§9 item 12: relay credentials of a session whose token never expires last 7 days from
    each push."""
    cw = await run_sync(client_world)
    from accounts.models import Token

    await run_sync(
        lambda: Token.objects.filter(pk=cw.w.client_token_row.pk).update(expires_at=None)
    )
    rl1 = await join_relay(live, cw, RL1)
    async with rl1.device:
        joined = await join_client(live, cw)
        async with joined.device:
            relays = joined.init["payload"]["relays"]
            week = int(time.time()) + 7 * 24 * 3600
            assert len(relays) == 2
            assert all(abs(r["expires_at"] - week) <= 5 for r in relays)
            assert all(isinstance(r["expires_at"], int) for r in relays)
