"""Shared pieces of the access-hub model tests (test_hub_model*.py): the receiving side (a real
`firezone.stream.StreamSubscriber` feeding a follower, as a hub has), the world the random writes
draw from (contexts, versions, conditions, names, addresses, filters, actors), and the truth the
model is compared with (`connectable_resources` per context and version, the model's state, the
diff frames applied to what a socket was told).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings as django_settings
from hypothesis import strategies as st

from firezone import stream
from gateways import wire
from gateways.hub.model import AccessModel, ClientView
from gateways.models import Client
from resources import access
from resources.conditions import RequestContext

# --- the receiving side: a real subscriber, as a hub has ------------------------------------------


class StreamFeed:
    """A real `StreamSubscriber` on an event loop in a thread of its own; records every message
    (None = "reconnected") it receives, per account."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.subscriber = stream.StreamSubscriber(url=django_settings.REDIS_URL)
        self.received: dict[str, list[stream.StreamMessage | None]] = {}
        self.handlers: dict[str, Any] = {}
        self.cond = threading.Condition()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def follow(self, account_id: Any) -> None:
        key = str(account_id)
        self.received[key] = []

        async def handler(message: stream.StreamMessage | None) -> None:
            with self.cond:
                self.received[key].append(message)
                self.cond.notify_all()

        self.handlers[key] = handler
        self.run(self.subscriber.subscribe(key, handler))

    def unfollow(self, account_id: Any) -> None:
        key = str(account_id)
        handler = self.handlers.pop(key, None)
        if handler is not None:
            self.run(self.subscriber.unsubscribe(key, handler))
        self.received.pop(key, None)

    def take_until(
        self, account_id: Any, seq: int, *, after: int = 0, timeout: float = 10
    ) -> list[Any]:
        """Everything received for the account, waiting (when `seq` is past `after`, what the
        caller already has) until a message numbered `seq` or later, or a reconnect marker,
        arrived."""
        key = str(account_id)

        def arrived() -> bool:
            return any(m is None or m.seq >= seq for m in self.received[key])

        with self.cond:
            if seq > after and not self.cond.wait_for(arrived, timeout):
                raise AssertionError(f"stream message {seq} of {key} never arrived")
            taken, self.received[key] = self.received[key], []
        return taken

    def close(self) -> None:
        try:
            self.run(self.subscriber.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


def published_seq(account_id: Any) -> int:
    """The account's stream sequence number in Redis (the last published message)."""
    client, _ = stream._client()
    reply = client.get(stream.seq_key(account_id))
    assert not isinstance(reply, Awaitable)  # redis-py types sync replies as maybe-awaitable
    return int(reply or 0)


@dataclass
class Follower:
    """Keeps an `AccessModel` current exactly as `AccountHub.on_message` does (baseline seq,
    gaps, reload markers, snapshot skip, `apply_all`), counting what it had to do."""

    account_id: str
    feed: StreamFeed
    model: AccessModel | None = None
    last_seq: int = 0
    reloads: int = 0
    applied: int = 0
    skipped_in_snapshot: int = 0

    def start(self) -> None:
        self.feed.follow(self.account_id)  # subscribed first, then the baseline and the load
        self.reload()
        self.reloads = 0

    def reload(self) -> None:
        self.last_seq = published_seq(self.account_id)
        self.model = AccessModel.load(self.account_id)
        self.reloads += 1

    def sync(self) -> None:
        """Apply everything published so far."""
        published = published_seq(self.account_id)
        for message in self.feed.take_until(self.account_id, published, after=self.last_seq):
            if message is None:
                self.reload()
                continue
            if message.seq <= self.last_seq:
                continue
            if message.seq != self.last_seq + 1:
                self.reload()
                continue
            self.last_seq = message.seq
            if message.reload:
                self.reload()
                continue
            assert self.model is not None
            if self.model.snapshot.contains(message.xid):
                self.skipped_in_snapshot += 1
                continue
            self.model.apply_all(message.changes)
            self.applied += 1


# --- the world ------------------------------------------------------------------------------------

NOON = datetime(2025, 10, 8, 12, 0, tzinfo=UTC)  # a Wednesday

CONTEXTS: dict[str, RequestContext] = {
    f"{'verified' if verified else 'unverified'}-{region}": RequestContext(
        now=NOON,
        remote_ip="198.51.100.7" if region == "US" else "203.0.113.9",
        remote_ip_location_region=region,
        client_verified=verified,
    )
    for verified in (True, False)
    for region in ("US", "DE")
}

VERSIONS = ("1.4.0", "1.1.0")

CONDITIONS: list[dict[str, Any]] = [
    {"property": "remote_ip_location_region", "operator": "is_in", "values": ["US"]},
    {"property": "remote_ip_location_region", "operator": "is_not_in", "values": ["US", "FR"]},
    {"property": "client_verified", "operator": "is", "values": ["true"]},
    {"property": "client_verified", "operator": "is", "values": ["false"]},
    {"property": "remote_ip", "operator": "is_in_cidr", "values": ["198.51.100.0/24"]},
    {
        "property": "current_utc_datetime",
        "operator": "is_in_day_of_week_time_ranges",
        "values": ["W/true/UTC"],
    },
    {
        "property": "current_utc_datetime",
        "operator": "is_in_day_of_week_time_ranges",
        "values": ["M/true/UTC"],
    },
]

conditions_st = st.lists(st.sampled_from(CONDITIONS), max_size=2)

# Mixed case, spaces and punctuation: the display order must not depend on who sorts.
NAMES = ["alpha", "Beta", "beta", "gamma", "Gamma", "a b", "a-b", "ab", "_x", "Zed", "zed"]

names = st.sampled_from(NAMES)

# (type, address): wildcards make 1.1 clients see other addresses or nothing at all.
ADDRESSES = [
    ("dns", "app.example.com"),
    ("dns", "*.example.com"),
    ("dns", "**.corp.example.com"),
    ("dns", "a*b.example.com"),
    ("ip", "10.0.0.1"),
    ("cidr", "10.1.0.0/16"),
]

addresses = st.sampled_from(ADDRESSES)

filters_st = st.sampled_from(
    [
        [],
        [{"protocol": "tcp", "ports": ["443"]}],
        [{"protocol": "udp", "ports": ["53", "1000-2000"]}, {"protocol": "icmp"}],
    ]
)

# Actors with a client (their views are checked) and actors without (they fill groups).
CLIENT_ACTORS = 4

OTHER_ACTORS = 8

EMPTY = ClientView({})


def resource_views(client: Client, ctx: RequestContext, version: str) -> list[dict[str, Any]]:
    """The ground truth: a fresh database read, rendered like the socket renders it."""
    return [
        wire.client_resource_view(r)
        for r in access.connectable_resources(client, version=version, request_context=ctx)
    ]


def truth_by_context(client: Client) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """`resource_views` for every context and version. `connectable_resources` is
    `client_access_load(client).connectable(ctx, version)`: the database part is read once per
    client (fresh), the pure part runs per context and version; one combination also goes
    through `connectable_resources` itself to keep the two the same thing."""
    loaded = access.client_access_load(client)
    truth = {
        (name, version): [wire.client_resource_view(r) for r in loaded.connectable(ctx, version)]
        for name, ctx in CONTEXTS.items()
        for version in VERSIONS
    }
    name, ctx = next(iter(CONTEXTS.items()))
    assert resource_views(client, ctx, VERSIONS[0]) == truth[name, VERSIONS[0]]
    return truth


def model_state(model: AccessModel) -> dict[str, Any]:
    return {
        "config": model.config,
        "slug": model.slug,
        "resources": model.resources,
        "connections": model.connections,
        "sites": model.sites,
        "policies": model.policies,
        "memberships": model.memberships,
    }


def apply_frames(state: dict[str, Any], frames: list[Any]) -> dict[str, Any]:
    """What a client holds after the pushes `frames`, starting from `state`."""
    state = dict(state)
    for event, payload, text in frames:
        decoded = json.loads(text)
        assert decoded == {"event": event, "payload": payload, "ref": None, "topic": "client"}
        if event == wire.RESOURCE_DELETED:
            assert payload in state, f"deleted {payload}, which the client was never told"
            del state[payload]
        else:
            assert event == wire.RESOURCE_CREATED_OR_UPDATED
            state[payload["id"]] = payload
    return state
