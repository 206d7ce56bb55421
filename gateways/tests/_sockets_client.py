"""Shared setup of the client-socket tests (test_sockets_client_*.py): the §7 common setup
(`client_world`), the expected views, the device helpers (joining a client or a relay, a
gateway that is online, a channel-layer group listener) and the relays RL1-RL3.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

from accounts.auth import Subject
from accounts.models import Account, ActorGroup
from accounts.tests.factories import GroupFactory, MembershipFactory, subject_for
from firezone import changes
from gateways import presence
from gateways.models import Client, Gateway, Site
from gateways.services.sites import site_create_internet
from gateways.tests.factories import GatewayFactory
from gateways.tests.sockets import (
    CLIENT_PATH,
    GATEWAY_PATH,
    GATEWAY_UA,
    RELAY_PATH,
    RELAY_UA,
    World,
    make_world,
    stamp_secret,
)
from resources.models import Policy, Resource
from resources.services.resources import resource_create_internet
from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory
from tests.live import DEVICE_HEADERS, Device, frame, reply, run_sync

UPSTREAM_DNS = [
    {"protocol": "ip_port", "address": "1.1.1.1"},
    {"protocol": "ip_port", "address": "8.8.8.8:53"},
]

UPSTREAM_DNS_VIEW = [
    {"protocol": "ip_port", "address": "1.1.1.1:53"},
    {"protocol": "ip_port", "address": "8.8.8.8:53"},
]

HEADLESS_UA = "Ubuntu/22.04 headless-client/1.5.4"

RDNS_FILTERS = [
    {"protocol": "tcp", "ports": ["80", "433"]},
    {"protocol": "udp", "ports": ["100 - 200"]},
    {"protocol": "icmp", "ports": []},
]

RDNS_FILTERS_VIEW = [
    {"protocol": "tcp", "port_range_start": 80, "port_range_end": 80},
    {"protocol": "tcp", "port_range_start": 433, "port_range_end": 433},
    {"protocol": "udp", "port_range_start": 100, "port_range_end": 200},
    {"protocol": "icmp"},
]


def push(event: str, payload: Any) -> dict[str, Any]:
    return frame("client", event, payload)


# ------------------------------------------------------------------ the common setup (§7)


@dataclass
class ClientWorld:
    """§7 "common setup": account A (`acme`, upstream DNS, search domain), admin U in G1, client
    token Tc, site S with a gateway row GW (1.4.17, no socket), the Internet site Si, and the
    resources Rdns, Rcidr, Rip, Rinet, Rnc, Roff all granted to G1."""

    w: World
    g1: ActorGroup
    internet_site: Site
    gateway: Gateway
    rinet: Resource
    # Created once the world exists (`ClientWorld.resource`).
    rdns: Resource = field(init=False)
    rcidr: Resource = field(init=False)
    rip: Resource = field(init=False)
    rnc: Resource = field(init=False)
    roff: Resource = field(init=False)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def account(self) -> Account:
        return self.w.account

    @property
    def site(self) -> Site:
        return self.w.site

    @property
    def expiry(self) -> int:
        """E: the client token's expiry, unix seconds."""
        expires_at = self.w.client_token_row.expires_at
        assert expires_at is not None
        return int(expires_at.timestamp())

    def admin(self) -> Subject:
        return subject_for(self.w.actor, identity=self.w.identity)

    def grant(self, resource: Resource, group: ActorGroup | None = None, **kwargs: Any) -> Policy:
        return PolicyFactory(
            account=self.account, actor_group=group or self.g1, resource=resource, **kwargs
        )

    def resource(self, *sites: Site, **kwargs: Any) -> Resource:
        resource = ResourceFactory(account=self.account, **kwargs)
        for site in sites:
            ConnectionFactory(resource=resource, gateway_group=site, account=self.account)
        return resource

    def group_with_member(self, name: str) -> ActorGroup:
        group = GroupFactory(account=self.account, name=name)
        MembershipFactory(group=group, actor=self.w.actor, account=self.account)
        return group


def client_world(*, grant_all: bool = True) -> ClientWorld:
    w = make_world()
    account = w.account
    Account.objects.filter(pk=account.pk).update(
        config={"clients_upstream_dns": UPSTREAM_DNS, "search_domain": "example.com"}
    )
    account.refresh_from_db()
    g1 = GroupFactory(account=account, name="G1")
    MembershipFactory(group=g1, actor=w.actor, account=account)
    internet_site = site_create_internet(account=account)
    rinet = resource_create_internet(account=account, site=internet_site)
    gateway = GatewayFactory(group=w.site, account=account, last_seen_version="1.4.17", name="GW")
    cw = ClientWorld(
        w=w,
        g1=g1,
        internet_site=internet_site,
        gateway=gateway,
        rinet=rinet,
    )
    cw.rdns = cw.resource(
        w.site,
        name="httpbin",
        address="*.httpbin",
        address_description="httpbin wildcard",
        ip_stack="ipv4_only",
        filters=RDNS_FILTERS,
    )
    cw.rcidr = cw.resource(w.site, type="cidr", name="lan", address="192.168.1.0/28", ip_stack=None)
    cw.rip = cw.resource(w.site, type="ip", name="printer", address="192.168.100.1", ip_stack=None)
    cw.rnc = cw.resource(w.site, name="not-from-here", address="nc.example.com")
    cw.roff = cw.resource(name="nowhere", address="off.example.com")
    if grant_all:
        for resource in (cw.rdns, cw.rcidr, cw.rip, cw.rinet, cw.roff):
            cw.grant(resource)
        cw.grant(
            cw.rnc,
            conditions=[
                {
                    "property": "remote_ip_location_region",
                    "operator": "is_not_in",
                    "values": ["Ukraine"],
                }
            ],
        )
    return cw


# ------------------------------------------------------------------ expected views


def site_ref(site: Site) -> dict[str, str]:
    return {"id": str(site.pk), "name": site.name}


def filters_view(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rendered: list[dict[str, Any]] = []
    for entry in filters:
        if entry["protocol"] == "icmp" or not entry.get("ports"):
            rendered.append({"protocol": entry["protocol"]})
            continue
        for port in entry["ports"]:
            start, _, end = port.partition("-")
            rendered.append(
                {
                    "protocol": entry["protocol"],
                    "port_range_start": int(start),
                    "port_range_end": int(end or start),
                }
            )
    return rendered


def view(resource: Resource, *sites: Site) -> dict[str, Any]:
    """The client resource view (§3.1.2) of a resource, written out independently of wire.py."""
    resource.refresh_from_db()
    groups = [site_ref(s) for s in sites]
    if resource.type == "internet":
        return {
            "id": str(resource.pk),
            "type": "internet",
            "gateway_groups": groups,
            "can_be_disabled": True,
        }
    address = resource.address
    if resource.type == "ip":
        address = f"{address}/32"
    result = {
        "id": str(resource.pk),
        "type": "cidr" if resource.type == "ip" else resource.type,
        "address": address,
        "address_description": resource.address_description,
        "name": resource.name,
        "gateway_groups": groups,
        "filters": filters_view(resource.filters),
    }
    if resource.type == "dns" and resource.ip_stack:
        result["ip_stack"] = resource.ip_stack
    return result


def b64_sha256(value: str) -> str:
    return base64.b64encode(hashlib.sha256(value.encode()).digest()).decode().rstrip("=")


def relay_entries(
    relay_id: Any, ipv4: str, ipv6: str, secret: str, client_key: str, expires_at: int
) -> list[dict[str, Any]]:
    """§3.1.2 relay view with §4.3 credentials, computed independently of gateways.turn."""
    salt = b64_sha256(client_key)
    common = {
        "id": str(relay_id),
        "type": "turn",
        "username": f"{expires_at}:{salt}",
        "password": b64_sha256(f"{expires_at}:{secret}:{salt}"),
        "expires_at": expires_at,
    }
    return [
        {**common, "addr": f"{ipv4}:3478"},
        {**common, "addr": f"[{ipv6}]:3478"},
    ]


# ------------------------------------------------------------------ devices


@dataclass
class Joined:
    device: Device
    client: Client
    params: dict[str, Any]
    init: dict[str, Any]


async def join_client(live, cw: ClientWorld, *, user_agent: str | None = None) -> Joined:
    """Join C (§7): returns the device after its reply and `init` (both asserted in shape)."""
    headers = dict(DEVICE_HEADERS)
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    params = cw.w.client_params()
    device = live.device()
    await device.connect(CLIENT_PATH, params, headers)
    assert await device.join("client") == reply("client", 0)
    init = await device.recv()
    assert (init["event"], init["topic"], init["ref"]) == ("init", "client", None)
    client = Client.objects.get(external_id=params["external_id"])
    return Joined(device, client, params, init)


def interface(client: Client, search_domain: str | None = "example.com") -> dict[str, Any]:
    return {
        "search_domain": search_domain,
        "upstream_dns": UPSTREAM_DNS_VIEW,
        "ipv4": str(client.ipv4),
        "ipv6": str(client.ipv6),
    }


async def expect_pushes(device: Device, count: int, timeout: float = 5.0) -> list[dict]:
    return [await device.recv(timeout) for _ in range(count)]


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


class GroupListener:
    """A channel-layer channel in the test process, subscribed to some groups."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel = ""
        self.groups: list[str] = []

    async def listen(self, group: str) -> GroupListener:
        if not self.channel:
            self.channel = await self.layer.new_channel()
        await self.layer.group_add(group, self.channel)
        self.groups.append(group)
        return self

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.layer.receive(self.channel), timeout)

    async def nothing(self, timeout: float = 0.5) -> None:
        try:
            message = await self.receive(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message}")

    async def close(self) -> None:
        for group in self.groups:
            await self.layer.group_discard(group, self.channel)


@contextlib.asynccontextmanager
async def gateway_online(
    live, cw: ClientWorld, *, user_agent: str = GATEWAY_UA, site_token: str | None = None
) -> AsyncIterator[tuple[Device, Gateway]]:
    """A gateway socket joined on S. While the gateway socket itself may not yet track its
    presence (written concurrently), the test tracks it in `account_gateways:` on its behalf."""
    params = cw.w.gateway_params(**({"token": site_token} if site_token else {}))
    device = live.device()
    await device.connect(
        GATEWAY_PATH, params, {"User-Agent": user_agent, "X-Forwarded-For": "189.172.73.200"}
    )
    joined = await device.join("gateway")
    assert joined["payload"]["status"] == "ok"
    gateway = Gateway.objects.get(external_id=params["external_id"])
    topic = presence.account_gateways_topic(cw.account.pk)

    async def online() -> bool:
        return str(gateway.pk) in await presence.list_presences(topic)

    conn_id = None
    try:
        await wait_for(online, 1.0)
    except AssertionError:
        conn_id = f"test-{uuid.uuid4().hex}"
        await presence.track(topic, str(gateway.pk), conn_id, {})
    try:
        yield device, gateway
    finally:
        if conn_id is not None:
            await presence.untrack(topic, str(gateway.pk), conn_id)
        await device.close()
        await presence.aclose()


def admin_do(cw: ClientWorld, fn, /, **kwargs: Any):
    return run_sync(fn, subject=cw.admin(), **kwargs)


def delete_atomically(target: Any) -> None:
    with transaction.atomic():
        changes.delete(target)


# ------------------------------------------------------------------ relays RL1-RL3 (22-26)


@dataclass
class RelaySocket:
    device: Device
    relay_id: Any
    ipv4: str
    ipv6: str
    secret: str


RL1 = {"ipv4": "172.28.0.101", "ipv6": "2001:db8::101", "name": "rl1", "coords": "37,-120"}

RL2 = {"ipv4": "172.28.0.102", "ipv6": "2001:db8::102", "name": "rl2", "coords": "38,-121"}

RL3 = {"ipv4": "172.28.0.103", "ipv6": "2001:db8::103", "name": "rl3", "coords": "39,-122"}


async def open_relay(live, cw: ClientWorld, spec: dict[str, str]) -> Device:
    device = live.device()
    params = cw.w.relay_params(ipv4=spec["ipv4"], ipv6=spec["ipv6"], name=spec["name"])
    await device.connect(
        RELAY_PATH,
        params,
        {
            "User-Agent": RELAY_UA,
            "X-Forwarded-For": "189.172.73.250",
            "x-geo-location-coordinates": spec["coords"],
        },
    )
    return device


async def join_relay(
    live, cw: ClientWorld, spec: dict[str, str], *, secret: str | None = None, device=None
) -> RelaySocket:
    from gateways.models import Relay

    device = device or await open_relay(live, cw, spec)
    secret = secret or stamp_secret()
    assert await device.join("relay", {"stamp_secret": secret}) == reply("relay", 0)
    assert await device.recv() == frame("relay", "init", {})
    relay = Relay.objects.get(ipv4=spec["ipv4"])
    topic = presence.relay_topic(relay.pk)

    async def tracked() -> bool:
        return str(relay.pk) in await presence.list_presences(topic)

    await wait_for(tracked)
    return RelaySocket(device, relay.pk, spec["ipv4"], spec["ipv6"], secret)


def relays_of(relay: RelaySocket, joined: Joined, cw: ClientWorld) -> list[dict[str, Any]]:
    return relay_entries(
        relay.relay_id, relay.ipv4, relay.ipv6, relay.secret, joined.params["public_key"], cw.expiry
    )
