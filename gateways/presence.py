"""Who is online right now (protocol.md §4.1): a Redis registry shared by every daphne process.

Elixir uses Phoenix.Presence, whose entries vanish when the channel process dies. Here an entry
belongs to a *connection* (`conn_id`, e.g. the consumer's channel name) and lives while that
connection's deadline is in the future. Each process refreshes the deadlines of all its live
connections in one Redis call per tick (`PRESENCE_REFRESH_SECONDS`, default 15 s), so a crashed
process's entries expire after `PRESENCE_TTL_SECONDS` (default 45 s) and `sweep()` (Celery beat,
every 10 s) removes them and publishes their leaves. Nothing polls per socket.

Redis layout (`PRESENCE_KEY_PREFIX`, default "presence"; tests use a prefix of their own):

    <p>:conns        sorted set   conn_id -> deadline (ms, Redis clock)
    <p>:t:<topic>    hash         "<key>|<conn_id>" -> meta JSON   (one per entry)
    <p>:c:<conn_id>  hash         "<topic>\\n<key>" -> "1"          (entries of a connection)

Every mutation is one Lua script, so two processes (or two sweepers) never both report the same
leave. Deadlines use the Redis server clock, so clock skew between hosts does not matter.

A key is online while at least one entry for it exists (several connections of one device give
several entries). Every added/removed entry is published to `group_name(topic)` through the
channel layer as `{"type": "presence.diff", "topic", "joins": {key: meta}, "leaves": {key: meta}}`
(handler `presence_diff`); deciding whether a leave was the *last* one is the receiver's business
(`list_presences`). Diffs go only to groups somebody joined, so join the group *before* reading
the presence you will follow.

Topics are the strings of §4.1 without Elixir's `presences:` prefix (helpers below).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import redis
import redis.asyncio as aioredis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

DIFF_TYPE: Final = "presence.diff"
GLOBAL_RELAYS: Final = "global_relays"

# Conns per Lua call when refreshing or sweeping: bounds how long one script blocks Redis.
_BATCH: Final = 1000
_PUBLISH_CONCURRENCY: Final = 16


# --- topics ---------------------------------------------------------------------------------------


def account_clients_topic(account_id: Any) -> str:
    return f"account_clients:{account_id}"


def actor_clients_topic(actor_id: Any) -> str:
    return f"actor_clients:{actor_id}"


def account_gateways_topic(account_id: Any) -> str:
    return f"account_gateways:{account_id}"


def group_gateways_topic(site_id: Any) -> str:
    return f"group_gateways:{site_id}"


def group_relays_topic(group_id: Any) -> str:
    return f"group_relays:{group_id}"


def account_relays_topic(account_id: Any) -> str:
    return f"account_relays:{account_id}"


def relay_topic(relay_id: Any) -> str:
    return f"relays:{relay_id}"


def group_name(topic: str) -> str:
    """The channel-layer group that receives the presence diffs of `topic`."""
    return "presence." + topic.replace(":", ".")


# --- settings (read at call time so tests can override them) --------------------------------------


def _prefix() -> str:
    return getattr(settings, "PRESENCE_KEY_PREFIX", "presence")


def _ttl_ms() -> int:
    return max(1, int(float(getattr(settings, "PRESENCE_TTL_SECONDS", 45)) * 1000))


def _refresh_seconds() -> float:
    return float(getattr(settings, "PRESENCE_REFRESH_SECONDS", 15))


# --- Lua ------------------------------------------------------------------------------------------

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: prefix, conn, ttl, then (topic, key, meta) triples. Returns the previous meta of each
# entry (false when new).
_TRACK = (
    _NOW
    + """
local p, conn, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local conns = p .. ':conns'
local cur = redis.call('ZSCORE', conns, conn)
if (not cur) or tonumber(cur) < now + ttl then redis.call('ZADD', conns, now + ttl, conn) end
local ck = p .. ':c:' .. conn
local olds = {}
for i = 4, #ARGV, 3 do
  local topic, key, meta = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local tk = p .. ':t:' .. topic
  local field = key .. '|' .. conn
  olds[#olds + 1] = redis.call('HGET', tk, field)
  redis.call('HSET', tk, field, meta)
  redis.call('HSET', ck, topic .. '\\n' .. key, '1')
end
return olds
"""
)

_UNTRACK = """
local p, topic, key, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local tk = p .. ':t:' .. topic
local field = key .. '|' .. conn
local old = redis.call('HGET', tk, field)
if not old then return false end
redis.call('HDEL', tk, field)
local ck = p .. ':c:' .. conn
redis.call('HDEL', ck, topic .. '\\n' .. key)
if redis.call('HLEN', ck) == 0 then
  redis.call('DEL', ck)
  redis.call('ZREM', p .. ':conns', conn)
end
return old
"""

# Removes every entry of a connection; appends (topic, key, meta) triples to `out`.
_DROP = """
local function drop(p, conn, out)
  local ck = p .. ':c:' .. conn
  for _, f in ipairs(redis.call('HKEYS', ck)) do
    local nl = string.find(f, '\\n', 1, true)
    local topic = string.sub(f, 1, nl - 1)
    local key = string.sub(f, nl + 1)
    local tk = p .. ':t:' .. topic
    local hf = key .. '|' .. conn
    local meta = redis.call('HGET', tk, hf)
    if meta then
      redis.call('HDEL', tk, hf)
      out[#out + 1] = topic
      out[#out + 1] = key
      out[#out + 1] = meta
    end
  end
  redis.call('DEL', ck)
  redis.call('ZREM', p .. ':conns', conn)
end
"""

_UNTRACK_ALL = (
    _DROP
    + """
local out = {}
drop(ARGV[1], ARGV[2], out)
return out
"""
)

# Returns {number of dead conns, topic, key, meta, topic, key, meta, ...}.
_SWEEP = (
    _NOW
    + _DROP
    + """
local p, limit = ARGV[1], tonumber(ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', p .. ':conns', '-inf', '(' .. now, 'LIMIT', 0, limit)
local out = {#dead}
for _, conn in ipairs(dead) do drop(p, conn, out) end
return out
"""
)

# Extends the deadline of live conns; returns the ones Redis no longer knows (swept while this
# process stalled, or Redis restarted) so their tracker can re-register its entries.
_REFRESH = (
    _NOW
    + """
local p, ttl = ARGV[1], tonumber(ARGV[2])
local conns = p .. ':conns'
local missing = {}
for i = 3, #ARGV do
  local c = ARGV[i]
  if redis.call('ZSCORE', conns, c) then
    redis.call('ZADD', conns, now + ttl, c)
  else
    missing[#missing + 1] = c
  end
end
return missing
"""
)

# For each topic in ARGV[2..]: {key, meta, key, meta, ...} of the entries whose conn is alive.
_LIST = (
    _NOW
    + """
local p = ARGV[1]
local conns = p .. ':conns'
local alive = {}
local result = {}
for i = 2, #ARGV do
  local h = redis.call('HGETALL', p .. ':t:' .. ARGV[i])
  local out = {}
  for j = 1, #h, 2 do
    local f = h[j]
    local sep = string.find(f, '|[^|]*$')
    local conn = string.sub(f, sep + 1)
    local a = alive[conn]
    if a == nil then
      local s = redis.call('ZSCORE', conns, conn)
      a = (s ~= false) and (tonumber(s) >= now)
      alive[conn] = a
    end
    if a then
      out[#out + 1] = string.sub(f, 1, sep - 1)
      out[#out + 1] = h[j + 1]
    end
  end
  result[#result + 1] = out
end
return result
"""
)

_SCRIPTS: Final = {
    "track": _TRACK,
    "untrack": _UNTRACK,
    "untrack_all": _UNTRACK_ALL,
    "sweep": _SWEEP,
    "refresh": _REFRESH,
    "list": _LIST,
}


# --- clients: one async client per event loop, one sync client per process ------------------------


class _LoopState:
    """Per event loop: redis.asyncio connections are bound to the loop that opened them."""

    def __init__(self) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            # Bounded: a burst of connecting sockets queues for a connection instead of opening
            # thousands of them.
            max_connections=int(getattr(settings, "PRESENCE_REDIS_MAX_CONNECTIONS", 32)),
            timeout=None,
        )
        self.client = aioredis.Redis(connection_pool=pool)
        self.scripts = {name: self.client.register_script(src) for name, src in _SCRIPTS.items()}
        self.trackers: weakref.WeakSet[PresenceTracker] = weakref.WeakSet()
        self.refresher: asyncio.Task | None = None
        self.inflight: dict[Any, _Flight] = {}


_loop_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
    weakref.WeakKeyDictionary()
)


def _state() -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _loop_states.get(loop)
    if state is None:
        state = _loop_states[loop] = _LoopState()
    return state


_sync_client: tuple[str, redis.Redis, dict[str, Any]] | None = None


def _sync() -> tuple[redis.Redis, dict[str, Any]]:
    global _sync_client
    if _sync_client is None or _sync_client[0] != settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}
        _sync_client = (settings.REDIS_URL, client, scripts)
    return _sync_client[1], _sync_client[2]


async def aclose() -> None:
    """Close this event loop's Redis connections (tests, shutdown); they reopen on next use."""
    loop = asyncio.get_running_loop()
    state = _loop_states.pop(loop, None)
    if state is not None:
        if state.refresher is not None:
            state.refresher.cancel()
        await state.client.aclose()


# --- encoding / publishing ------------------------------------------------------------------------


def _check(topic: str, key: str, conn_id: str | None = None) -> None:
    # '|' separates key and conn in a field, '\n' topic and key.
    if "\n" in topic or "|" in key or "\n" in key or (conn_id is not None and "|" in conn_id):
        raise ValueError("presence topic/key/conn_id contain a reserved character")


def _with_online_at(meta: dict) -> dict:
    # Always a copy: the tracker keeps it for re-registration, the caller may reuse its dict.
    return {"online_at": int(time.time()), **meta}


def _dump(meta: dict) -> str:
    return json.dumps(meta, separators=(",", ":"), sort_keys=True)


def _diff(topic: str, joins: dict | None = None, leaves: dict | None = None) -> dict:
    return {"type": DIFF_TYPE, "topic": topic, "joins": joins or {}, "leaves": leaves or {}}


def _leave_messages(flat: list) -> list[dict]:
    """Diff messages for (topic, key, meta) triples: one per topic, or more when one key lost
    several entries at once (a diff maps a key to one meta)."""
    by_topic: dict[str, list[dict]] = {}
    for i in range(0, len(flat), 3):
        topic, key, meta = flat[i], flat[i + 1], json.loads(flat[i + 2])
        messages = by_topic.setdefault(topic, [])
        for message in messages:
            if key not in message["leaves"]:
                message["leaves"][key] = meta
                break
        else:
            messages.append(_diff(topic, leaves={key: meta}))
    return [m for messages in by_topic.values() for m in messages]


def _layer_group_keys(layer: Any, messages: list[dict]) -> list[str] | None:
    """The channel layer's Redis keys of the messages' groups, when the layer keeps its groups
    in our Redis (channels-redis, one host = REDIS_URL); None when we cannot tell."""
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(layer, RedisChannelLayer) or len(layer.hosts) != 1:
        return None
    if layer.hosts[0].get("address") != settings.REDIS_URL:
        return None
    return [layer._group_key(group_name(m["topic"])).decode() for m in messages]


async def _send_all(layer: Any, messages: list[dict]) -> None:
    async def send(message: dict) -> None:
        try:
            await layer.group_send(group_name(message["topic"]), message)
        except Exception:  # a lost diff must not break the socket that caused it
            logger.exception("presence: publishing a diff of %s failed", message["topic"])

    # A few at a time: concurrent round trips without opening a connection per message.
    for i in range(0, len(messages), _PUBLISH_CONCURRENCY):
        await asyncio.gather(*(send(m) for m in messages[i : i + _PUBLISH_CONCURRENCY]))


async def _publish(messages: Iterable[dict]) -> None:
    """group_send each diff, skipping groups nobody joined (most presence topics, most of the
    time: a channel-layer group_send costs two round trips even when empty). A subscriber that
    joins the group before reading presence misses nothing: a write either sees its group or
    happened before its read."""
    messages = list(messages)
    if not messages:
        return
    layer = get_channel_layer()
    keys = _layer_group_keys(layer, messages)
    if keys is not None:
        try:
            async with _state().client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.exists(key)
                listened = await pipe.execute()
            messages = [m for m, flag in zip(messages, listened, strict=True) if flag]
        except Exception:
            logger.exception("presence: checking diff listeners failed; sending to all")
    await _send_all(layer, messages)


def _publish_sync(messages: list[dict]) -> None:
    if not messages:
        return
    layer = get_channel_layer()
    keys = _layer_group_keys(layer, messages)
    if keys is not None:
        client, _scripts = _sync()
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        messages = [m for m, flag in zip(messages, pipe.execute(), strict=True) if flag]
    if messages:
        async_to_sync(_send_all)(layer, messages)


# --- the registry ---------------------------------------------------------------------------------


async def track(topic: str, key: str, conn_id: str, meta: dict) -> None:
    """Register (or update) the entry (topic, key, conn_id). Nothing refreshes it: use a
    `PresenceTracker` for entries that must outlive `PRESENCE_TTL_SECONDS`."""
    await track_many(conn_id, [(topic, key, meta)])


async def track_many(conn_id: str, entries: Iterable[tuple[str, str, dict]]) -> list[dict]:
    """Register several entries of one connection in one Redis call (a relay has four).
    Returns the metas as stored (with `online_at`). A re-tracked entry is an update: its diff
    has the old meta in `leaves` and the new one in `joins`."""
    entries = [(topic, key, _with_online_at(meta)) for topic, key, meta in entries]
    if not entries:
        return []
    args: list[Any] = [_prefix(), conn_id, _ttl_ms()]
    for topic, key, meta in entries:
        _check(topic, key, conn_id)
        args += [topic, key, _dump(meta)]
    olds = await _state().scripts["track"](args=args)
    await _publish(
        _diff(topic, joins={key: meta}, leaves={key: json.loads(old)} if old else None)
        for (topic, key, meta), old in zip(entries, olds, strict=True)
    )
    return [meta for _topic, _key, meta in entries]


async def untrack(topic: str, key: str, conn_id: str) -> None:
    _check(topic, key, conn_id)
    old = await _state().scripts["untrack"](args=[_prefix(), topic, key, conn_id])
    if old:
        await _publish([_diff(topic, leaves={key: json.loads(old)})])


async def untrack_conn(conn_id: str) -> None:
    """Remove every entry of a connection (what `PresenceTracker.untrack_all` does)."""
    flat = await _state().scripts["untrack_all"](args=[_prefix(), conn_id])
    await _publish(_leave_messages(flat))


def _parse_lists(topics: list[str], raw: list) -> dict[str, dict[str, list[dict]]]:
    result: dict[str, dict[str, list[dict]]] = {}
    for topic, flat in zip(topics, raw, strict=True):
        presences: dict[str, list[dict]] = {}
        for i in range(0, len(flat), 2):
            presences.setdefault(flat[i], []).append(json.loads(flat[i + 1]))
        for metas in presences.values():
            metas.sort(key=lambda m: (m.get("online_at") or 0, _dump(m)))
        result[topic] = presences
    return result


async def list_presences_many(topics: Iterable[str]) -> dict[str, dict[str, list[dict]]]:
    """`{topic: {key: [meta, ...]}}` in one Redis call. Concurrent identical calls in this
    process share reads (a relay leave makes every watching socket ask at once), see `_Flight`."""
    topics = list(dict.fromkeys(topics))
    if not topics:
        return {}
    state = _state()
    flight = ("list", _prefix(), tuple(topics))
    prefix = _prefix()
    raw = await _coalesce(state, flight, lambda: state.scripts["list"](args=[prefix, *topics]))
    return _parse_lists(topics, raw)


async def list_presences(topic: str) -> dict[str, list[dict]]:
    """`{key: [meta, ...]}`: one meta per live connection, oldest `online_at` first."""
    return (await list_presences_many([topic]))[topic]


def list_presences_many_sync(topics: Iterable[str]) -> dict[str, dict[str, list[dict]]]:
    topics = list(dict.fromkeys(topics))
    if not topics:
        return {}
    _client, scripts = _sync()
    return _parse_lists(topics, scripts["list"](args=[_prefix(), *topics]))


def list_presences_sync(topic: str) -> dict[str, list[dict]]:
    return list_presences_many_sync([topic])[topic]


async def sweep() -> int:
    """Remove the entries of connections whose deadline passed and publish their leaves.
    Returns the number of dead connections removed. Safe to run from several places at once."""
    scripts, removed = _state().scripts, 0
    while True:
        out = await scripts["sweep"](args=[_prefix(), _BATCH])
        removed += out[0]
        await _publish(_leave_messages(out[1:]))
        if out[0] < _BATCH:
            return removed


def sweep_sync() -> int:
    """`sweep()` for sync callers (the Celery task)."""
    _client, scripts = _sync()
    removed = 0
    while True:
        out = scripts["sweep"](args=[_prefix(), _BATCH])
        removed += out[0]
        _publish_sync(_leave_messages(out[1:]))
        if out[0] < _BATCH:
            return removed


# --- single-flight reads --------------------------------------------------------------------------


class _Flight:
    """Shares one read among concurrent callers of one process, but never hands a caller a read
    that started before it asked: whoever received a diff must see the state after that diff.
    Callers arriving while a read runs share the *next* read, started when this one ends."""

    def __init__(self, state: _LoopState, key: Any) -> None:
        self.state, self.key = state, key
        self.running: asyncio.Future | None = None
        self.queued: asyncio.Future | None = None
        self.queued_start: Callable[[], Awaitable[Any]] | None = None

    def _launch(self, start: Callable[[], Awaitable[Any]]) -> asyncio.Future:
        self.running = asyncio.ensure_future(start())
        self.running.add_done_callback(self._done)
        return self.running

    def _done(self, _finished: asyncio.Future) -> None:
        self.running = None
        if self.queued is None:
            self.state.inflight.pop(self.key, None)
            return
        waiters, start = self.queued, self.queued_start
        self.queued = self.queued_start = None
        self._launch(start).add_done_callback(lambda f: _relay_outcome(f, waiters))  # type: ignore[arg-type]

    async def join(self, start: Callable[[], Awaitable[Any]]) -> Any:
        if self.running is None:
            future = self._launch(start)
        else:
            if self.queued is None:
                self.queued = asyncio.get_running_loop().create_future()
                self.queued_start = start
            future = self.queued
        # shield: one waiter being cancelled (its socket closed) must not cancel the shared read.
        return await asyncio.shield(future)


def _relay_outcome(source: asyncio.Future, target: asyncio.Future) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())


async def _coalesce(state: _LoopState, key: Any, start: Callable[[], Awaitable[Any]]) -> Any:
    flight = state.inflight.get(key)
    if flight is None:
        flight = state.inflight[key] = _Flight(state, key)
    return await flight.join(start)


async def coalesced(flight: Any, start: Callable[[], Awaitable[Any]]) -> Any:
    """`await start()`, shared by the concurrent callers in this process asking for the same
    `flight`; each caller gets a result read after it asked."""
    return await _coalesce(_state(), ("user", flight), start)


# --- per-connection tracker -----------------------------------------------------------------------


class PresenceTracker:
    """The presence entries of one socket. `track` on join, `untrack_all` on disconnect.

    All trackers of a process are refreshed together by one background task per event loop
    (one Redis call per `PRESENCE_REFRESH_SECONDS` for up to 1,000 connections).
    """

    def __init__(self, conn_id: str | None = None) -> None:
        self.conn_id = conn_id or uuid.uuid4().hex
        if "|" in self.conn_id:
            raise ValueError("conn_id must not contain '|'")
        self._entries: dict[tuple[str, str], dict] = {}
        self._closed = False

    @property
    def entries(self) -> dict[tuple[str, str], dict]:
        """`{(topic, key): meta}` this tracker keeps alive."""
        return dict(self._entries)

    async def track(self, topic: str, key: str, meta: dict) -> None:
        await self.track_many([(topic, key, meta)])

    async def track_many(self, entries: Iterable[tuple[str, str, dict]]) -> None:
        """Several `(topic, key, meta)` entries in one Redis call."""
        if self._closed:
            return
        entries = list(entries)
        metas = await track_many(self.conn_id, entries)
        if self._closed:  # untrack_all ran while we were writing: do not leave orphans
            await untrack_conn(self.conn_id)
            return
        for (topic, key, _meta), meta in zip(entries, metas, strict=True):
            self._entries[(topic, key)] = meta
        _register(self)

    async def untrack(self, topic: str, key: str) -> None:
        self._entries.pop((topic, key), None)
        await untrack(topic, key, self.conn_id)

    async def untrack_all(self) -> None:
        """Remove every entry (publishing leaves). The tracker cannot be reused afterwards."""
        self._closed = True
        self._entries.clear()
        await untrack_conn(self.conn_id)

    async def _retrack(self) -> None:
        if self._closed or not self._entries:
            return
        await track_many(self.conn_id, [(t, k, m) for (t, k), m in self._entries.items()])
        if self._closed:  # untrack_all ran meanwhile
            await untrack_conn(self.conn_id)


def _register(tracker: PresenceTracker) -> None:
    state = _state()
    state.trackers.add(tracker)
    if state.refresher is None or state.refresher.done():
        state.refresher = asyncio.get_running_loop().create_task(
            _refresh_loop(state), name="presence-refresh"
        )


async def _refresh_loop(state: _LoopState) -> None:
    while True:
        await asyncio.sleep(_refresh_seconds())
        trackers = [t for t in state.trackers if t._entries and not t._closed]
        if not trackers:
            state.refresher = None  # restarted by the next track()
            return
        try:
            await refresh(trackers)
        except Exception:  # Redis briefly away: try again next tick; entries last 3 ticks
            logger.exception("presence: refresh failed")


async def refresh(trackers: Iterable[PresenceTracker]) -> None:
    """Extend the deadline of the trackers' connections, in batches; re-register the entries of
    connections Redis lost (swept during a stall, or Redis restarted), publishing joins."""
    by_conn = {t.conn_id: t for t in trackers}
    conn_ids = list(by_conn)
    script, prefix, ttl = _state().scripts["refresh"], _prefix(), _ttl_ms()
    for i in range(0, len(conn_ids), _BATCH):
        missing = await script(args=[prefix, ttl, *conn_ids[i : i + _BATCH]])
        for conn_id in missing:
            await by_conn[conn_id]._retrack()
