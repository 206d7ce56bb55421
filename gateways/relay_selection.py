"""Relay selection (protocol.md §4.2) and the `relays_presence` state machine (§4.4).

* `connected_relays(account_id)`: the relays online for an account (global + the account's own),
  each with the stamp secret of its newest presence entry, that still exist in the database.
* `load_balance_relays(candidates, lat, lon)`: at most 2, from the 2 nearest locations.
* `RelayWatch`: what a client/gateway channel subscribes to and when it pushes
  `relays_presence`. Pure (no I/O, time passed in); it returns actions the consumer performs.
  `relay_watch_start` / `relay_watch_handle` are the small async drivers that do the I/O the
  machine needs (presence read, selection) around it.

Consumer sketch:

    self.watch = RelayWatch(account_id)
    selection, actions = await relay_watch_start(self.watch, lat=lat, lon=lon)
    await self.perform(actions)                   # group_add for Subscribe
    ... push init with relay_views(selection, public_key, expires_at) ...

    async def presence_diff(self, message):       # channel-layer type "presence.diff"
        await self.perform(await relay_watch_handle(self.watch, message, lat=lat, lon=lon))

    perform: Subscribe -> group_add(a.group), Unsubscribe -> group_discard(a.group),
      Push -> send relays_presence {disconnected_ids, connected: relay_views(a.connected, ...)},
      SchedulePush -> loop.call_later(a.delay, ...), then perform(watch.timer_fired(a.timer_id))
    on disconnect: perform(watch.stop()) (Unsubscribe only) and cancel timers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from channels.db import database_sync_to_async
from django.conf import settings

from firezone.geo import distance_km
from gateways import presence
from gateways.models import Relay

MAX_RELAYS: Final = 2
# A relay row is re-read when its presence identity (secret, online_at) changes, or after this.
_ROW_CACHE_SECONDS: Final = 10.0


@dataclass(frozen=True)
class RelayCandidate:
    id: str
    ipv4: str | None
    ipv6: str | None
    port: int
    lat: float | None
    lon: float | None
    secret: str
    online_at: int


# --- §4.2 step 1: who is online -------------------------------------------------------------------


def _latest(
    presences: Iterable[Mapping[str, list[dict]]], exclude: Iterable[Any]
) -> dict[str, tuple[str, int]]:
    """relay id -> (secret, online_at) of its newest entry carrying a secret."""
    excluded = {str(i) for i in exclude}
    latest: dict[str, tuple[str, int]] = {}
    for topic in presences:
        for relay_id, metas in topic.items():
            if relay_id in excluded:
                continue
            for meta in metas:
                secret, online_at = meta.get("secret"), int(meta.get("online_at") or 0)
                if secret and (relay_id not in latest or online_at >= latest[relay_id][1]):
                    latest[relay_id] = (secret, online_at)
    return latest


_Row = tuple[str | None, str | None, str | None, int, float | None, float | None]


def _fetch_rows(ids: Iterable[str]) -> dict[str, _Row]:
    """relay id -> (account_id, ipv4, ipv6, port, lat, lon) for the ids that exist."""

    rows = Relay.objects.filter(id__in=list(ids)).values_list(
        "id",
        "account_id",
        "ipv4",
        "ipv6",
        "port",
        "last_seen_remote_ip_location_lat",
        "last_seen_remote_ip_location_lon",
    )
    return {
        str(rid): (str(acc) if acc else None, v4, v6, port, lat, lon)
        for rid, acc, v4, v6, port, lat, lon in rows
    }


def _candidates(
    latest: Mapping[str, tuple[str, int]], rows: Mapping[str, _Row | None], account_id: Any
) -> list[RelayCandidate]:
    account = str(account_id)
    found = []
    for relay_id, (secret, online_at) in latest.items():
        row = rows.get(relay_id)
        if row is None or row[0] not in (None, account):  # deleted, or another account's
            continue
        _acc, ipv4, ipv6, port, lat, lon = row
        found.append(RelayCandidate(relay_id, ipv4, ipv6, port, lat, lon, secret, online_at))
    return sorted(found, key=lambda c: c.id)


# Per process: (id) -> (secret, online_at, fetched_at, row or None). Relays reconnect rarely and
# every reconnect changes online_at, so a presence identity pins the row it was read with.
_row_cache: dict[str, tuple[str, int, float, _Row | None]] = {}


async def _rows_for(latest: Mapping[str, tuple[str, int]]) -> dict[str, _Row | None]:
    now = time.monotonic()
    rows: dict[str, _Row | None] = {}
    missing = []
    for relay_id, (secret, online_at) in latest.items():
        cached = _row_cache.get(relay_id)
        if cached and cached[:2] == (secret, online_at) and now - cached[2] < _ROW_CACHE_SECONDS:
            rows[relay_id] = cached[3]
        else:
            missing.append(relay_id)
    if missing:
        key = ("relay_rows", frozenset(missing))
        fetched = await presence.coalesced(
            key, lambda: database_sync_to_async(_fetch_rows)(missing)
        )
        if len(_row_cache) > 10_000:
            _row_cache.clear()
        for relay_id in missing:
            row = fetched.get(relay_id)
            rows[relay_id] = row
            _row_cache[relay_id] = (*latest[relay_id], now, row)
    return rows


def _relay_topics(account_id: Any) -> list[str]:
    return [presence.GLOBAL_RELAYS, presence.account_relays_topic(account_id)]


async def connected_relays(
    account_id: Any, exclude: Iterable[Any] = frozenset()
) -> list[RelayCandidate]:
    """§4.2 step 1: relays online globally or in this account, minus `exclude`, that exist and are
    global or this account's, with their newest stamp secret. Sorted by id."""
    presences = await presence.list_presences_many(_relay_topics(account_id))
    latest = _latest(presences.values(), exclude)
    if not latest:
        return []
    return _candidates(latest, await _rows_for(latest), account_id)


# --- §4.2 steps 2-4: load balancing ---------------------------------------------------------------


def load_balance_relays(
    candidates: Sequence[RelayCandidate],
    lat: float | None,
    lon: float | None,
    rng: Any = random,
) -> list[RelayCandidate]:
    """At most 2 relays: one random relay from each of the 2 locations nearest to (lat, lon);
    locations with unknown coordinates come last. Unknown device location: 2 random relays."""
    if lat is None or lon is None:
        pool = list(candidates)
        rng.shuffle(pool)
        return pool[:MAX_RELAYS]

    locations: dict[tuple[float | None, float | None], list[RelayCandidate]] = {}
    for candidate in candidates:
        locations.setdefault((candidate.lat, candidate.lon), []).append(candidate)

    def distance(location: tuple[float | None, float | None]) -> tuple[int, float]:
        at_lat, at_lon = location
        if at_lat is None or at_lon is None:
            return (1, 0.0)
        return (0, distance_km((lat, lon), (at_lat, at_lon)))

    nearest = sorted(locations, key=distance)[:MAX_RELAYS]
    return [rng.choice(locations[location]) for location in nearest]


# --- §4.4: the relays_presence state machine ------------------------------------------------------


@dataclass(frozen=True)
class Subscribe:
    """Join the channel-layer group of a presence topic."""

    topic: str
    group: str


@dataclass(frozen=True)
class Unsubscribe:
    topic: str
    group: str


@dataclass(frozen=True)
class Push:
    """Push `relays_presence` now; render `connected` with `turn.relay_views` at send time."""

    disconnected_ids: tuple[str, ...]
    connected: tuple[RelayCandidate, ...]


@dataclass(frozen=True)
class SchedulePush:
    """Call `watch.timer_fired(timer_id)` after `delay` seconds (`due_at` on the clock passed
    in as `now`)."""

    timer_id: int
    delay: float
    due_at: float


Action = Subscribe | Unsubscribe | Push | SchedulePush


@dataclass(frozen=True)
class RelayLeft:
    """A selected relay's per-relay presence reported a leave."""

    relay_id: str


@dataclass(frozen=True)
class RelaysJoined:
    """Relays joined account-wide/global presence while the channel had no relay:
    relay id -> stamp secret of the joining entry."""

    joins: dict[str, str | None]


@dataclass
class _Pending:
    relay_id: str
    secret: str | None
    payload: Push


@dataclass
class RelayWatch:
    """Per channel: the selected relays and their stamp secrets, the pending (debounced) leaves,
    and the presence topics subscribed to (one per selected relay, or account-wide + global
    relay presence while there is no relay at all)."""

    account_id: Any
    debounce_ms: int | None = None
    selected: tuple[RelayCandidate, ...] = ()
    secrets: dict[str, str] = field(default_factory=dict)
    # relay id -> stamp secret at leave time
    pending: dict[str, str | None] = field(default_factory=dict)
    subscribed: set[str] = field(default_factory=set)
    _timers: dict[int, _Pending] = field(default_factory=dict)
    _next_timer: int = 0

    def __post_init__(self) -> None:
        if self.debounce_ms is None:
            self.debounce_ms = int(getattr(settings, "RELAYS_PRESENCE_DEBOUNCE_MS", 3000))

    # -- topics --

    @property
    def account_topics(self) -> tuple[str, str]:
        return (presence.account_relays_topic(self.account_id), presence.GLOBAL_RELAYS)

    @property
    def watching_account(self) -> bool:
        return any(topic in self.subscribed for topic in self.account_topics)

    def _subscribe(self, topics: Iterable[str]) -> list[Action]:
        actions: list[Action] = []
        for topic in topics:
            if topic not in self.subscribed:
                self.subscribed.add(topic)
                actions.append(Subscribe(topic, presence.group_name(topic)))
        return actions

    def _unsubscribe(self, topics: Iterable[str]) -> list[Action]:
        actions: list[Action] = []
        for topic in topics:
            if topic in self.subscribed:
                self.subscribed.discard(topic)
                actions.append(Unsubscribe(topic, presence.group_name(topic)))
        return actions

    def _select(self, selection: Sequence[RelayCandidate]) -> list[Action]:
        """Adopt `selection`: watch each selected relay, remember its secret."""
        self.selected = tuple(selection)
        self.secrets = {relay.id: relay.secret for relay in selection}
        return self._subscribe(presence.relay_topic(relay.id) for relay in selection)

    # -- lifecycle --

    def begin(self) -> list[Action]:
        """Optional, before the first selection: watch account-wide presence so a relay joining
        between the presence read and the subscription is not missed. `start` undoes it when
        the selection is not empty."""
        return self._subscribe(self.account_topics)

    def start(self, selection: Sequence[RelayCandidate]) -> list[Action]:
        """After the initial selection (the one sent in `init`)."""
        actions = self._select(selection)
        if selection:
            return self._unsubscribe(self.account_topics) + actions
        return actions + self._subscribe(self.account_topics)

    def stop(self) -> list[Action]:
        """On disconnect: leave every group; pending pushes are void."""
        self._timers.clear()
        self.pending.clear()
        return self._unsubscribe(sorted(self.subscribed))

    # -- events --

    def classify(self, message: Mapping[str, Any]) -> RelayLeft | RelaysJoined | None:
        """What a `presence.diff` means for this channel (None: nothing to do). Joins on
        per-relay topics and account-wide leaves are ignored, as in Elixir."""
        topic = message.get("topic")
        if topic not in self.subscribed:
            return None  # a diff queued before we unsubscribed
        if topic.startswith("relays:"):
            relay_id = topic.split(":", 1)[1]
            if relay_id in message.get("leaves", {}) and relay_id in self.secrets:
                return RelayLeft(relay_id)
            return None
        joins = message.get("joins") or {}
        if topic in self.account_topics and joins:
            return RelaysJoined({rid: (meta or {}).get("secret") for rid, meta in joins.items()})
        return None

    def relay_left(
        self, relay_id: str, selection: Sequence[RelayCandidate], now: float
    ) -> list[Action]:
        """A selected relay went offline; `selection` = reselection excluding it. The push is
        debounced: it only happens if the leave is still pending with the same secret then."""
        secret = self.secrets.get(relay_id)
        actions = self._unsubscribe([presence.relay_topic(relay_id)])
        actions += self._select(selection)
        if not selection:
            actions += self._subscribe(self.account_topics)
        self.pending[relay_id] = secret
        self._next_timer += 1
        timer_id = self._next_timer
        payload = Push((relay_id,), tuple(selection))
        self._timers[timer_id] = _Pending(relay_id, secret, payload)
        assert self.debounce_ms is not None  # set by __post_init__
        delay = self.debounce_ms / 1000
        return [*actions, SchedulePush(timer_id, delay, now + delay)]

    def relay_restarted(self, relay_id: str, selection: Sequence[RelayCandidate]) -> list[Action]:
        """A selected relay's entry left while another entry of it with a *different* secret is
        online (the restarted relay connected before the old socket was gone): its credentials
        are void, report it now. `selection` includes the relay with its new secret."""
        actions = self._unsubscribe([presence.relay_topic(relay_id)])
        actions += self._select(selection)
        if not selection:
            actions += self._subscribe(self.account_topics)
        return [*actions, Push((relay_id,), tuple(selection))]

    def relays_joined(
        self, online: Mapping[str, str | None], selection: Sequence[RelayCandidate]
    ) -> list[Action]:
        """A relay came online while watching account-wide presence. `online`: the relays online
        now (id -> stamp secret; the diff's joins at least), `selection`: a fresh selection.
        Nothing happens while the selection is empty."""
        if not selection or not self.watching_account:
            return []
        actions = self._unsubscribe(self.account_topics) + self._select(selection)
        disconnected = []
        for relay_id, secret in list(self.pending.items()):
            if relay_id in online and online[relay_id] == secret:
                pass  # a flap with the same secret: hidden from the device
            else:
                # Restarted (new secret) or gone: report now. Unlike Elixir we drop it from the
                # pending map, so its debounced push does not report it a second time.
                disconnected.append(relay_id)
            del self.pending[relay_id]
        return [*actions, Push(tuple(disconnected), tuple(selection))]

    def timer_fired(self, timer_id: int) -> list[Action]:
        """The debounce of a leave elapsed: push it if still pending with the same secret."""
        timer = self._timers.pop(timer_id, None)
        if timer is None or timer.relay_id not in self.pending:
            return []
        if self.pending[timer.relay_id] != timer.secret:
            return []
        del self.pending[timer.relay_id]
        return [timer.payload]


# --- async drivers: the I/O around the machine ----------------------------------------------------


async def relay_watch_start(
    watch: RelayWatch, *, lat: float | None, lon: float | None, rng: Any = random
) -> tuple[list[RelayCandidate], list[Action]]:
    """The initial selection (for `init`) and the subscriptions to perform."""
    selection = load_balance_relays(await connected_relays(watch.account_id), lat, lon, rng)
    return selection, watch.start(selection)


async def relay_watch_handle(
    watch: RelayWatch,
    message: Mapping[str, Any],
    *,
    lat: float | None,
    lon: float | None,
    now: float | None = None,
    rng: Any = random,
) -> list[Action]:
    """Actions for one `presence.diff` message."""
    event = watch.classify(message)
    if event is None:
        return []
    now = time.monotonic() if now is None else now
    candidates = await connected_relays(watch.account_id)
    if isinstance(event, RelaysJoined):
        # "Re-joined" is judged on current presence, which includes this diff's joins unless
        # they already left again.
        online = {c.id: c.secret for c in candidates}
        return watch.relays_joined(online, load_balance_relays(candidates, lat, lon, rng))

    relay_id = event.relay_id
    current = next((c for c in candidates if c.id == relay_id), None)
    if current is not None and current.secret == watch.secrets.get(relay_id):
        return []  # another connection of the same relay instance is still online
    if current is not None:
        return watch.relay_restarted(relay_id, load_balance_relays(candidates, lat, lon, rng))
    others = [c for c in candidates if c.id != relay_id]
    return watch.relay_left(relay_id, load_balance_relays(others, lat, lon, rng), now)
