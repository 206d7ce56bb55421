"""Two accounts A and B with joined sockets, for the hostile-frame tests
(gateways/tests/test_sockets_fuzz.py) and bench/frames.py: A's current client, 1.3 client,
gateway and self-hosted relay are the senders; B's client and gateway are bystanders that must
hear nothing. `ids` are what a fuzzed payload may name: both accounts' clients, gateways,
resources, and signed refs (minted for B's gateway, for A's own, and without a gateway id).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from accounts.models import Account
from firezone.models import ChangeLog
from gateways.crypto import sign_ref
from gateways.models import Client
from gateways.tests._sockets_gateway import Setup, join_gateway, make_setup
from gateways.tests.sockets import RELAY_PATH, RELAY_UA, stamp_secret
from resources.models import Flow
from tests.hostile import Ids, Socket
from tests.live import DEVICE_HEADERS, LiveServer, run_sync

HEADLESS_UA = "Ubuntu/22.04 headless-client/1.5.4"
LEGACY_UA = "iOS/12.7 (iPhone) connlib/1.3.0"
# The events the gateway is told about when a flow row is written (§3.2.4, §3.2.7, §3.2.8).
FLOW_PUSHES = {"authorize_flow", "request_connection", "allow_access"}


def two_setups() -> tuple[Setup, Setup]:
    a = make_setup()
    Account.objects.filter(pk=a.account.pk).update(slug="acme-a")
    return a, make_setup()


async def join_client(live: LiveServer, setup: Setup, ua: str, name: str) -> tuple[Socket, str]:
    params = setup.world.client_params()
    device = live.device()
    await device.connect("/client/websocket", params, {**DEVICE_HEADERS, "User-Agent": ua})
    assert (await device.join("client"))["payload"]["status"] == "ok"
    assert (await device.recv())["event"] == "init"
    row = await run_sync(Client.objects.get, external_id=params["external_id"])
    return Socket(name, device, "client"), str(row.pk)


async def join_relay(live: LiveServer, setup: Setup) -> Socket:
    device = live.device()
    headers = {**DEVICE_HEADERS, "User-Agent": RELAY_UA}
    await device.connect(RELAY_PATH, setup.world.relay_params(global_=False), headers)
    assert (await device.join("relay", {"stamp_secret": stamp_secret()}))["payload"][
        "status"
    ] == "ok"
    assert (await device.recv())["event"] == "init"
    return Socket("relay A", device, "relay")


@dataclass
class World:
    a: Setup
    b: Setup
    client: Socket  # A's current client
    legacy: Socket  # A's 1.3 client (prepare/request/reuse_connection)
    gateway: Socket  # A's gateway
    relay: Socket  # A's self-hosted relay
    b_client: Socket
    b_gateway: Socket
    ids: Ids

    @property
    def sockets(self) -> list[Socket]:
        return [self.client, self.legacy, self.gateway, self.relay, self.b_client, self.b_gateway]

    def bystanders(self, target: Socket) -> list[Socket]:
        return [s for s in self.sockets if s is not target]


def _refs(a: Setup, b: Setup, a_gateway: str, b_gateway: str, a_client: str) -> list[str]:
    """Signed refs a gateway may try to redeem: minted for B's gateway, for A's own (with a
    channel nobody listens on), and without a gateway id (refused: only the gateway a ref was
    minted for may redeem it)."""
    ice = {"username": "abcd", "password": "x" * 22}
    flow = {
        "client_channel": "specific.nobody!listens",
        "client_id": a_client,
        "resource_id": str(a.rdns.pk),
        "preshared_key": "k" * 44,
        "client_ice_credentials": ice,
        "gateway_ice_credentials": ice,
        "client_ref": 1,
    }
    return [
        sign_ref({**flow, "gateway_id": b_gateway, "resource_id": str(b.rdns.pk)}),
        sign_ref({**flow, "gateway_id": a_gateway}),
        sign_ref(flow),
        "SFMyNTY.forged",
    ]


async def world(live: LiveServer) -> World:
    a, b = await run_sync(two_setups)
    gw, a_gateway, _ = await join_gateway(live, a.world)
    b_gw, b_gateway, _ = await join_gateway(live, b.world)
    client, a_client = await join_client(live, a, HEADLESS_UA, "client A")
    legacy, a_legacy = await join_client(live, a, LEGACY_UA, "legacy client A")
    b_client, b_client_id = await join_client(live, b, HEADLESS_UA, "client B")
    relay = await join_relay(live, a)
    ids = Ids(
        clients=[a_client, a_legacy, b_client_id, str(uuid.uuid4())],
        gateways=[str(a_gateway.pk), str(b_gateway.pk)],
        resources=[str(a.rdns.pk), str(b.rdns.pk)],
        refs=_refs(a, b, str(a_gateway.pk), str(b_gateway.pk), a_client),
    )
    found = World(
        a,
        b,
        client,
        legacy,
        Socket("gateway A", gw, "gateway"),
        relay,
        b_client,
        Socket("gateway B", b_gw, "gateway"),
        ids,
    )
    for socket in found.sockets:  # pushes of the joins (relays_presence, …) are not findings
        await socket.heartbeat()
        socket.received.clear()
    return found


def counts(a: Setup, b: Setup) -> dict[str, int]:
    return {
        "flows A": Flow.objects.filter(account=a.account).count(),
        "changes A": ChangeLog.objects.filter(account_id=a.account.pk).count(),
        "flows B": Flow.objects.filter(account=b.account).count(),
        "changes B": ChangeLog.objects.filter(account_id=b.account.pk).count(),
    }
