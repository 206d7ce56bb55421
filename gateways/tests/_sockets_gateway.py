"""Shared setup of the gateway-socket tests (test_sockets_gateway_*.py): a world with a site,
a gateway and a client (`make_setup`), flows, joining a gateway, and the messages a client socket
sends to `gateway.<id>` with the frames the gateway gets for them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from accounts.models import ActorGroup, ActorGroupMembership, Token
from accounts.tests.factories import GroupFactory, MembershipFactory, subject_for
from firezone import changes
from gateways import wire
from gateways.consumers.base import device_group
from gateways.crypto import pair_credentials, sign_ref
from gateways.models import Client, Gateway
from gateways.tests.sockets import (
    GATEWAY_PATH,
    GATEWAY_UA,
    World,
    make_world,
)
from resources.models import Flow, Policy, Resource
from resources.tests.factories import ClientFactory, ConnectionFactory, PolicyFactory
from resources.tests.factories import ResourceFactory as _ResourceFactory
from tests.live import DEVICE_HEADERS, Device, frame, reply

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
            "gateway_id": str(gateway.pk),
            "preshared_key": psk,
            "client_ice_credentials": ice.client.as_dict(),
            "gateway_ice_credentials": ice.gateway.as_dict(),
        }
    )
    view = wire.gateway_resource_view_for(
        Resource.objects.get(pk=flow.resource_id), gateway.last_seen_version
    )
    assert view is not None
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
