"""The client socket (protocol.md §3.1, §4.4, §5; §7 scenarios 15, 16, 19-44, 49-51) against a
live daphne, asserting whole frames.

The gateway side of a flow (scenarios 45-48, 52, 53) belongs to the gateway socket's tests; here
the client's half of that contract is checked by listening on the gateway's channel-layer group
(`gateway.<id>`) and by answering as a gateway would (`client.flow_authorized`,
`client.connection_ready`, `client.ice_candidates` to the client's channel / group).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.db import transaction

from accounts.auth import Subject
from accounts.models import Account, ActorGroup
from accounts.services.accounts import account_update
from accounts.services.groups import membership_add, membership_remove
from accounts.tests.factories import GroupFactory, MembershipFactory, subject_for
from firezone import changes
from gateways import crypto, presence, wire
from gateways.consumers.base import device_group
from gateways.models import Client, Gateway, Site
from gateways.services.clients import client_delete, client_remove_verification, client_verify
from gateways.services.sites import site_create_internet, site_update
from gateways.tests.factories import GatewayFactory, SiteFactory
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
from resources.models import Flow, Policy, Resource, ResourceConnection
from resources.services.policies import policy_update
from resources.services.resources import resource_create_internet, resource_update
from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory
from tests.live import DEVICE_HEADERS, Device, frame, reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

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
    rdns: Resource
    rcidr: Resource
    rip: Resource
    rinet: Resource
    rnc: Resource
    roff: Resource
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
        return int(self.w.client_token_row.expires_at.timestamp())

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
        rdns=None,  # type: ignore[arg-type]
        rcidr=None,  # type: ignore[arg-type]
        rip=None,  # type: ignore[arg-type]
        rinet=rinet,
        rnc=None,  # type: ignore[arg-type]
        roff=None,  # type: ignore[arg-type]
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
        expected = [
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
        assert by_id == sorted(expected, key=lambda r: r["id"])
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


# ------------------------------------------------------------------ 27, 28: account changes


async def test_27_config_change_pushes_config_changed(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        await admin_do(
            cw, account_update, account=cw.account, config={"search_domain": "new.example.com"}
        )
        assert await joined.device.recv() == push(
            "config_changed", {"interface": interface(joined.client, "new.example.com")}
        )
        await joined.device.expect_nothing(0.3)


async def test_28_account_rename_pushes_nothing(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        await admin_do(cw, account_update, account=cw.account, name="Renamed")
        await joined.device.expect_nothing(0.6)


# ------------------------------------------------------------------ 29-32: grants


async def test_29_30_membership_grants_and_revokes(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        s3 = SiteFactory(account=cw.account, name="S3")
        g3 = GroupFactory(account=cw.account, name="G3")
        r3 = cw.resource(s3, name="r3", address="r3.example.com", address_description="three")
        cw.grant(r3, group=g3)
        cw.extra.update(s3=s3, g3=g3, r3=r3)
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r3 = joined.device, cw.extra["r3"]
    async with device:
        await admin_do(cw, membership_add, group=cw.extra["g3"], actor=cw.w.actor)
        assert await device.recv() == push("resource_created_or_updated", view(r3, cw.extra["s3"]))
        await admin_do(cw, membership_remove, group=cw.extra["g3"], actor=cw.w.actor)
        assert await device.recv() == push("resource_deleted", str(r3.pk))
        await device.expect_nothing(0.3)


async def test_31_redundant_grants(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        g4, g5 = cw.group_with_member("G4"), cw.group_with_member("G5")
        r4 = cw.resource(cw.site, name="r4", address="r4.example.com")
        cw.grant(r4, group=g4)
        cw.grant(r4, group=g5)
        cw.extra.update(g4=g4, g5=g5, r4=r4)
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device = joined.device
    async with device:
        await admin_do(cw, membership_remove, group=cw.extra["g4"], actor=cw.w.actor)
        await device.expect_nothing(0.6)
        await admin_do(cw, membership_remove, group=cw.extra["g5"], actor=cw.w.actor)
        assert await device.recv() == push("resource_deleted", str(cw.extra["r4"].pk))


async def test_32_verification_condition(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        r5 = cw.resource(cw.site, name="r5", address="r5.example.com")
        cw.grant(
            r5,
            conditions=[{"property": "client_verified", "operator": "is", "values": ["true"]}],
        )
        cw.extra["r5"] = r5
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r5 = joined.device, cw.extra["r5"]
    async with device:
        assert str(r5.pk) not in {r["id"] for r in joined.init["payload"]["resources"]}
        await admin_do(cw, client_verify, client=joined.client)
        assert await device.recv() == push("resource_created_or_updated", view(r5, cw.site))
        await admin_do(cw, client_remove_verification, client=joined.client)
        assert await device.recv() == push("resource_deleted", str(r5.pk))
        await device.expect_nothing(0.3)


# ------------------------------------------------------------------ 33-39: policies, sites


async def test_33_site_rename_toggles_its_resources(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    device = joined.device
    async with device:
        await admin_do(cw, site_update, site=cw.site, name="S renamed")
        frames = await expect_pushes(device, 6)
        site = Site.objects.get(pk=cw.site.pk)
        ids = {str(r.pk) for r in (cw.rdns, cw.rcidr, cw.rip)}
        # Deletions first, then the re-creations with the new site name.
        assert [f["event"] for f in frames] == ["resource_deleted"] * 3 + [
            "resource_created_or_updated"
        ] * 3
        assert {f["payload"] for f in frames[:3]} == ids
        created = {f["payload"]["id"]: f for f in frames[3:]}
        assert set(created) == ids
        for resource in (cw.rdns, cw.rcidr, cw.rip):
            assert created[str(resource.pk)] == push(
                "resource_created_or_updated", view(resource, site)
            )
        await device.expect_nothing(0.3)


async def test_34_35_policy_updates(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        r6 = cw.resource(cw.site, name="r6", address="r6.example.com")
        cw.extra.update(r6=r6, policy=cw.grant(r6))
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r6, policy = joined.device, cw.extra["r6"], cw.extra["policy"]
    async with device:
        # 35: a cosmetic change.
        await admin_do(cw, policy_update, policy=policy, description="just words")
        await device.expect_nothing(0.6)
        # 34: a breaking change that still grants → delete, then insert.
        await admin_do(
            cw,
            policy_update,
            policy=policy,
            conditions=[
                {"property": "remote_ip_location_region", "operator": "is_not_in", "values": ["BR"]}
            ],
        )
        assert await device.recv() == push("resource_deleted", str(r6.pk))
        assert await device.recv() == push("resource_created_or_updated", view(r6, cw.site))
        # ... and one that no longer grants → delete only.
        await admin_do(
            cw,
            policy_update,
            policy=policy,
            conditions=[
                {"property": "remote_ip_location_region", "operator": "is_in", "values": ["BR"]}
            ],
        )
        assert await device.recv() == push("resource_deleted", str(r6.pk))
        await device.expect_nothing(0.5)


async def test_36_37_site_moves_are_toggles(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        s2 = SiteFactory(account=cw.account, name="S2")
        s3 = SiteFactory(account=cw.account, name="S3")
        r7 = cw.resource(cw.site, name="r7", address="r7.example.com")
        cw.grant(r7)
        cw.extra.update(s2=s2, s3=s3, r7=r7)
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r7, s2, s3 = joined.device, cw.extra["r7"], cw.extra["s2"], cw.extra["s3"]
    async with device:
        # 36: moved from S to S2.
        await admin_do(cw, resource_update, resource=r7, connections=[s2.pk])
        assert await device.recv() == push("resource_deleted", str(r7.pk))
        assert await device.recv() == push("resource_created_or_updated", view(r7, s2))
        await device.expect_nothing(0.3)
        # 37: a second site, then back to one.
        await admin_do(cw, resource_update, resource=r7, connections=[s2.pk, s3.pk])
        assert await device.recv() == push("resource_deleted", str(r7.pk))
        assert await device.recv() == push("resource_created_or_updated", view(r7, s2, s3))
        await admin_do(cw, resource_update, resource=r7, connections=[s3.pk])
        assert await device.recv() == push("resource_deleted", str(r7.pk))
        assert await device.recv() == push("resource_created_or_updated", view(r7, s3))
        await device.expect_nothing(0.3)


async def test_38_last_site_removed(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        r8 = cw.resource(cw.site, name="r8", address="r8.example.com")
        cw.grant(r8)
        cw.extra["r8"] = r8
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r8 = joined.device, cw.extra["r8"]
    async with device:
        await run_sync(delete_atomically, ResourceConnection.objects.filter(resource=r8))
        assert await device.recv() == push("resource_deleted", str(r8.pk))
        await device.expect_nothing(0.5)


async def test_39_resource_rename_is_an_update(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        r9 = cw.resource(cw.site, name="r9", address="r9.example.com")
        cw.grant(r9)
        cw.extra["r9"] = r9
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r9 = joined.device, cw.extra["r9"]
    async with device:
        await admin_do(cw, resource_update, resource=r9, name="r9 renamed")
        assert await device.recv() == push("resource_created_or_updated", view(r9, cw.site))
        assert (await run_sync(lambda: Resource.objects.get(pk=r9.pk).name)) == "r9 renamed"
        await device.expect_nothing(0.3)


async def test_irrelevant_changes_push_nothing(live) -> None:
    """Changes of other actors' groups, other resources and other sites concern nobody here."""

    def setup() -> ClientWorld:
        cw = client_world()
        other_group = GroupFactory(account=cw.account, name="others")
        other_site = SiteFactory(account=cw.account, name="elsewhere")
        other = cw.resource(other_site, name="other", address="other.example.com")
        cw.extra.update(other_group=other_group, other_site=other_site, other=other)
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device = joined.device
    async with device:

        def changes_elsewhere() -> None:
            subject = cw.admin()
            PolicyFactory(account=cw.account, actor_group=cw.extra["other_group"])
            resource_update(subject=subject, resource=cw.extra["other"], name="renamed")
            site_update(subject=subject, site=cw.extra["other_site"], name="elsewhere 2")

        await run_sync(changes_elsewhere)
        await device.expect_nothing(0.6)


# ------------------------------------------------------------------ 40: time windows


async def test_40_time_window_opens(live) -> None:
    now = datetime.now(UTC)
    if now.hour == 23 and now.minute >= 59:
        pytest.skip("the window would cross midnight")
    start = now + timedelta(seconds=3)
    day = "MTWRFSU"[start.weekday()]

    def setup() -> ClientWorld:
        cw = client_world()
        r10 = cw.resource(cw.site, name="r10", address="r10.example.com")
        cw.grant(
            r10,
            conditions=[
                {
                    "property": "current_utc_datetime",
                    "operator": "is_in_day_of_week_time_ranges",
                    "values": [f"{day}/{start:%H:%M:%S}-23:59:59/UTC"],
                }
            ],
        )
        cw.extra["r10"] = r10
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r10 = joined.device, cw.extra["r10"]
    async with device:
        assert str(r10.pk) not in {r["id"] for r in joined.init["payload"]["resources"]}
        # The server recomputes every 2 s (tests.live.SERVER_ENV; 60 s in production).
        assert await device.recv(timeout=10) == push(
            "resource_created_or_updated", view(r10, cw.site)
        )


# ------------------------------------------------------------------ 41: own client deleted


async def test_41_client_deleted_closes_the_channel(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        await admin_do(cw, client_delete, client=joined.client)
        assert await joined.device.recv() == frame("client", "phx_close", {})
        await joined.device.expect_closed()


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
