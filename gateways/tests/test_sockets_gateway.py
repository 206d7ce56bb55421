"""The gateway socket (protocol.md §3.2, §4.4, §5.5-§5.8, §6.3) against a live daphne.

Scenarios 54-67 drive the gateway through the channel-layer messages the client socket sends
(`gateway.authorize_flow`, ...) and through domain services; the end-to-end flow scenarios
(45-48, 52, 53, 70: a real client socket and a real gateway socket) are at the end. Every frame
is asserted whole.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts.models import ActorGroup, ActorGroupMembership, Token
from accounts.services.accounts import account_disable, account_update_system
from accounts.tests.factories import GroupFactory, MembershipFactory, subject_for
from firezone import changes
from gateways import presence, wire
from gateways.consumers.base import device_group
from gateways.crypto import pair_credentials, sign_ref
from gateways.models import Client, Gateway
from gateways.services.gateways import gateway_delete
from gateways.tests.factories import GatewayFactory, SiteFactory
from gateways.tests.sockets import (
    GATEWAY_PATH,
    GATEWAY_UA,
    RELAY_PATH,
    RELAY_UA,
    World,
    make_world,
    public_key,
    stamp_secret,
)
from gateways.turn import GATEWAY_CREDENTIALS_SECONDS, turn_credentials
from resources.models import Flow, Policy, Resource
from resources.services.policies import policy_delete
from resources.services.resources import resource_update
from resources.tests.factories import ClientFactory, ConnectionFactory, PolicyFactory
from resources.tests.factories import ResourceFactory as _ResourceFactory
from tests.live import DEVICE_HEADERS, Device, Rejected, frame, reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
GW_HEADERS = {**DEVICE_HEADERS, "User-Agent": GATEWAY_UA}
TCP80 = [{"protocol": "tcp", "ports": ["80"]}]
SPEC_FILTERS = [
    {"protocol": "tcp", "ports": ["80", "433"]},
    {"protocol": "udp", "ports": ["100 - 200"]},
    {"protocol": "icmp"},
]
SPEC_FILTERS_WIRE = [
    {"protocol": "tcp", "port_range_start": 80, "port_range_end": 80},
    {"protocol": "tcp", "port_range_start": 433, "port_range_end": 433},
    {"protocol": "udp", "port_range_start": 100, "port_range_end": 200},
    {"protocol": "icmp"},
]


def gw_frame(event: str, payload: Any) -> dict[str, Any]:
    return frame("gateway", event, payload)


# ------------------------------------------------------------------ setup


@dataclass
class Setup:
    """The §7 common setup, gateway side: U in G1, Rdns on S granted to G1, U's client C."""

    world: World
    g1: ActorGroup
    membership: ActorGroupMembership
    rdns: Resource
    policy: Policy
    client: Client

    @property
    def account(self):
        return self.world.account

    @property
    def token(self) -> Token:
        return self.world.client_token_row

    def admin(self):
        return subject_for(self.world.actor, identity=self.world.identity)


def resource(world: World, **kwargs: Any) -> Resource:
    kwargs.setdefault("type", "dns")
    kwargs.setdefault("ip_stack", "ipv4_only")
    kwargs.setdefault("filters", TCP80)
    found = _ResourceFactory(account=world.account, **kwargs)
    ConnectionFactory(resource=found, gateway_group=world.site, account=world.account)
    return found


def make_setup() -> Setup:
    world = make_world()
    g1 = GroupFactory(account=world.account, name="G1")
    membership = MembershipFactory(group=g1, actor=world.actor, account=world.account)
    rdns = resource(world, address="*.httpbin", name="httpbin")
    policy = PolicyFactory(account=world.account, actor_group=g1, resource=rdns)
    client = ClientFactory(account=world.account, actor=world.actor, identity=world.identity)
    return Setup(world, g1, membership, rdns, policy, client)


def other_client(setup: Setup) -> tuple[Client, Token, ActorGroupMembership, Policy]:
    """C2: another user with its own group G2 and its own policy for Rdns."""
    from accounts.tests.factories import ActorFactory
    from resources.tests.factories import client_token

    actor = ActorFactory(account=setup.account)
    group = GroupFactory(account=setup.account, name="G2")
    membership = MembershipFactory(group=group, actor=actor, account=setup.account)
    policy = PolicyFactory(account=setup.account, actor_group=group, resource=setup.rdns)
    client = ClientFactory(account=setup.account, actor=actor)
    return client, client_token(actor), membership, policy


def make_flow(
    setup: Setup,
    gateway: Gateway,
    *,
    client: Client | None = None,
    resource: Resource | None = None,
    policy: Policy | None = None,
    membership: ActorGroupMembership | None = None,
    token: Token | None = None,
    expires_in: timedelta = timedelta(hours=1),
) -> Flow:
    return Flow.objects.create(
        account=setup.account,
        policy=policy or setup.policy,
        client=client or setup.client,
        gateway=gateway,
        resource=resource or setup.rdns,
        token=token or setup.token,
        actor_group_membership=membership or setup.membership,
        client_remote_ip="189.172.73.153",
        client_user_agent="test",
        gateway_remote_ip="189.172.73.153",
        expires_at=timezone.now() + expires_in,
    )


def delete_atomically(target: Any) -> None:
    with transaction.atomic():
        changes.delete(target)


async def join_gateway(
    live, world: World, *, params: dict[str, Any] | None = None, ua: str = GATEWAY_UA
) -> tuple[Device, Gateway, dict[str, Any]]:
    """Connect, join and read `init`; returns the device, its gateway row and the init frame."""
    params = params or world.gateway_params()
    device = live.device()
    await device.connect(GATEWAY_PATH, params, {**GW_HEADERS, "User-Agent": ua})
    assert await device.join("gateway") == reply("gateway", 0)
    init = await device.recv()
    assert init["event"] == "init", init
    gateway = Gateway.objects.get(external_id=params["external_id"])
    return device, gateway, init


def expected_init(gateway: Gateway, *, slug: str = "acme", authorizations=(), relays=()):
    return gw_frame(
        "init",
        {
            "authorizations": list(authorizations),
            "account_slug": slug,
            "interface": {"ipv4": gateway.ipv4, "ipv6": gateway.ipv6},
            "relays": list(relays),
            "config": {"ipv4_masquerade_enabled": True, "ipv6_masquerade_enabled": True},
        },
    )


# Messages a client socket sends to gateway.<id> (the contract between the two consumers).


def authorize_flow_message(
    setup: Setup,
    gateway: Gateway,
    flow: Flow,
    *,
    client_channel: str = "client-channel-that-does-not-exist",
) -> dict[str, Any]:
    client = Client.objects.get(pk=flow.client_id)
    psk, ice = pair_credentials(client, gateway)
    ref = sign_ref(
        {
            "client_channel": client_channel,
            "client_id": str(client.pk),
            "resource_id": str(flow.resource_id),
            "preshared_key": psk,
            "client_ice_credentials": ice.client.as_dict(),
            "gateway_ice_credentials": ice.gateway.as_dict(),
        }
    )
    view = wire.gateway_resource_view_for(
        Resource.objects.get(pk=flow.resource_id), gateway.last_seen_version
    )
    payload = wire.authorize_flow(
        ref=ref,
        resource=view,
        client=client,
        preshared_key=psk,
        ice=ice,
        expires_at=flow.expires_at,
    )
    return {
        "type": "gateway.authorize_flow",
        "client_id": str(client.pk),
        "resource_id": str(flow.resource_id),
        "flow_id": str(flow.pk),
        "expires_at": wire.unix(flow.expires_at),
        "payload": payload,
    }


async def send_to_gateway(gateway: Gateway, message: dict[str, Any]) -> None:
    await get_channel_layer().group_send(device_group("gateway", gateway.pk), message)


async def authorize(
    device: Device, setup: Setup, gateway: Gateway, flow: Flow, **kwargs: Any
) -> dict[str, Any]:
    """Send `gateway.authorize_flow` and return the `authorize_flow` frame the gateway got."""
    message = authorize_flow_message(setup, gateway, flow, **kwargs)
    await send_to_gateway(gateway, message)
    pushed = await device.recv()
    assert pushed == gw_frame("authorize_flow", message["payload"])
    return pushed


def expiry_updated(client_id: Any, resource_id: Any, expires_at: Any) -> dict[str, Any]:
    return gw_frame(
        "access_authorization_expiry_updated",
        {
            "client_id": str(client_id),
            "resource_id": str(resource_id),
            "expires_at": wire.unix(expires_at),
        },
    )


def reject(client_id: Any, resource_id: Any) -> dict[str, Any]:
    return gw_frame("reject_access", {"client_id": str(client_id), "resource_id": str(resource_id)})


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


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


# ------------------------------------------------------------------ 58-60: flow deletions (§5.5)


async def test_58_expiry_update_when_other_flows_remain(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        f1 = await run_sync(make_flow, setup, gateway, expires_in=timedelta(hours=1))
        f2 = await run_sync(make_flow, setup, gateway, expires_in=timedelta(days=1))
        await authorize(device, setup, gateway, f1)
        await authorize(device, setup, gateway, f2)
        await run_sync(delete_atomically, Flow.objects.filter(pk=f1.pk))
        assert await device.recv() == expiry_updated(setup.client.pk, setup.rdns.pk, f2.expires_at)
        await device.expect_nothing(0.5)


async def test_59_reject_on_last_flow(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(policy_delete, subject=setup.admin(), policy=setup.policy)
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        await device.expect_nothing(0.5)
        assert not Flow.objects.exists()


async def test_60_other_gateways_flows_are_ignored(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    device, gateway, _ = await join_gateway(live, world)
    other, other_gateway, _ = await join_gateway(live, world)
    async with device, other:
        c2, c2_token, c2_membership, c2_policy = await run_sync(other_client, setup)
        flow = await run_sync(make_flow, setup, gateway)
        c2_flow = await run_sync(
            make_flow,
            setup,
            gateway,
            client=c2,
            token=c2_token,
            membership=c2_membership,
            policy=c2_policy,
        )
        elsewhere = await run_sync(make_flow, setup, other_gateway)
        await authorize(device, setup, gateway, flow)
        await authorize(device, setup, gateway, c2_flow)
        await authorize(other, setup, other_gateway, elsewhere)

        await run_sync(delete_atomically, Flow.objects.filter(pk=elsewhere.pk))
        # ... re-authorised on its own gateway (same policy still grants it), nothing here.
        [update] = [await other.recv()]
        assert update["event"] == "access_authorization_expiry_updated"
        await device.expect_nothing(0.5)

        await run_sync(policy_delete, subject=setup.admin(), policy=c2_policy)
        assert await device.recv() == reject(c2.pk, setup.rdns.pk)
        await device.expect_nothing(0.5)
        await other.expect_nothing(0.1)


async def test_last_flow_reauthorised_under_another_policy(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)

    def second_policy() -> Policy:
        group = GroupFactory(account=setup.account, name="G1b")
        MembershipFactory(group=group, actor=setup.world.actor, account=setup.account)
        return PolicyFactory(account=setup.account, actor_group=group, resource=setup.rdns)

    async with device:
        backup = await run_sync(second_policy)
        flow = await run_sync(make_flow, setup, gateway, expires_in=timedelta(hours=2))
        await authorize(device, setup, gateway, flow)
        await run_sync(policy_delete, subject=setup.admin(), policy=setup.policy)
        # min(policy expiry: none, deleted flow's expiry)
        assert await device.recv() == expiry_updated(
            setup.client.pk, setup.rdns.pk, flow.expires_at
        )
        [replacement] = Flow.objects.all()
        assert (replacement.policy_id, replacement.gateway_id, replacement.token_id) == (
            backup.pk,
            gateway.pk,
            setup.token.pk,
        )
        # The replacement is cached: deleting it goes through §5.5 again.
        await run_sync(policy_delete, subject=setup.admin(), policy=backup)
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        await device.expect_nothing(0.3)


async def test_flows_of_a_disabled_account_are_not_reauthorised(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(account_disable, account=setup.account, reason="test")
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        await device.expect_nothing(0.3)
        assert not Flow.objects.exists()


async def test_membership_removal_and_client_deletion_reject(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(
            delete_atomically, ActorGroupMembership.objects.filter(pk=setup.membership.pk)
        )
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)

        membership = await run_sync(
            MembershipFactory, group=setup.g1, actor=setup.world.actor, account=setup.account
        )
        flow = await run_sync(make_flow, setup, gateway, membership=membership)
        await authorize(device, setup, gateway, flow)
        await run_sync(delete_atomically, Client.objects.filter(pk=setup.client.pk))
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        await device.expect_nothing(0.3)


# ------------------------------------------------------------------ 61-64: resource changes


async def test_61_address_change_rejects_cached_pairs(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(
            resource_update, subject=setup.admin(), resource=setup.rdns, address="*.example.org"
        )
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        # The flow deletions of the same update find the pair gone: no re-authorisation.
        await device.expect_nothing(0.5)
        assert not Flow.objects.exists()


async def test_62_63_filters_change_reaches_every_gateway_and_rename_nothing(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    device, _gateway, _ = await join_gateway(live, world)
    unrelated, _, _ = await join_gateway(live, world)  # no flow for Rdns
    async with device, unrelated:
        await run_sync(
            resource_update, subject=setup.admin(), resource=setup.rdns, filters=SPEC_FILTERS
        )
        expected = gw_frame(
            "resource_updated",
            {
                "id": str(setup.rdns.pk),
                "name": "httpbin",
                "type": "dns",
                "address": "*.httpbin",
                "filters": SPEC_FILTERS_WIRE,
            },
        )
        assert await device.recv() == expected
        assert await unrelated.recv() == expected

        await run_sync(resource_update, subject=setup.admin(), resource=setup.rdns, name="renamed")
        await device.expect_nothing(0.5)
        await unrelated.expect_nothing(0.1)


async def test_64_old_gateway_adaptation(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    glob = await run_sync(resource, world, address="**.example.com", name="glob")
    inner = await run_sync(resource, world, address="example.*.com", name="inner")
    device, _, _init = await join_gateway(live, world, ua="Linux/24.04 gateway/1.1.0")
    async with device:
        await run_sync(resource_update, subject=setup.admin(), resource=glob, filters=SPEC_FILTERS)
        assert await device.recv() == gw_frame(
            "resource_updated",
            {
                "id": str(glob.pk),
                "name": "glob",
                "type": "dns",
                "address": "*.example.com",
                "filters": SPEC_FILTERS_WIRE,
            },
        )
        await run_sync(resource_update, subject=setup.admin(), resource=inner, filters=SPEC_FILTERS)
        await device.expect_nothing(0.5)


# ------------------------------------------------------------------ 65, 66: deletions


async def test_65_gateway_deleted(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    other, _, _ = await join_gateway(live, setup.world)
    async with device, other:
        await run_sync(gateway_delete, subject=setup.admin(), gateway=gateway)
        assert await device.expect_closed() == [gw_frame("phx_close", {})]
        ref = await other.send("phoenix", "heartbeat", {})
        assert await other.recv() == reply("phoenix", ref)


async def test_66_site_token_revoked(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    params = world.gateway_params()
    first, _, _ = await join_gateway(live, world, params=params)
    second, _, _ = await join_gateway(live, world)
    async with first, second:
        await run_sync(delete_atomically, Token.objects.filter(gateway_group=world.site))
        assert await first.expect_closed() == []
        assert await second.expect_closed() == []
    with pytest.raises(Rejected) as info:
        await live.device().connect(GATEWAY_PATH, params, GW_HEADERS)
    assert (info.value.status, info.value.text) == (401, "Invalid token")


# ------------------------------------------------------------------ 67 and the other messages


async def test_67_ice_candidates_to_every_socket_of_a_client(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    layer = get_channel_layer()
    c = str(setup.client.pk)
    sockets = [await layer.new_channel(), await layer.new_channel()]
    for channel in sockets:
        await layer.group_add(device_group("client", c), channel)
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
        assert sorted(init["payload"]["authorizations"], key=lambda a: a["resource_id"]) == sorted(
            [
                {
                    "client_id": str(setup.client.pk),
                    "resource_id": str(f.resource_id),
                    "expires_at": wire.unix(f.expires_at),
                }
                for f in (f1, f2)
            ],
            key=lambda a: a["resource_id"],
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

    relay = Relay.objects.get(account_id=None)

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


async def create_flow(client: Device, resource: Resource, connected: list[Any] = ()) -> None:
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
        assert Flow.objects.order_by("-inserted_at").first().gateway_id == gateway1.pk
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
