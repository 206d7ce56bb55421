"""The device stream: one Redis pub/sub channel per account, one message per committed transaction.

Device sockets do not listen to the change feed one by one. `firezone.changes` publishes each
committed transaction's changes of an account as ONE message on `<prefix>:stream:<account_id>`,
and every server process subscribes ONCE per account it has sockets of (`StreamSubscriber`),
whatever the number of those sockets; the process-local access hub (`gateways.hub`) applies it
and pushes to the affected sockets from memory.

Ordering and loss. A Lua script increments `<prefix>:seq:<account_id>` and publishes in one
atomic step, so every subscriber sees an account's messages numbered 1, 2, 3... with no gap. A
receiver that sees anything but `last + 1` (a message lost while its connection was down, a
Redis restart that reset the counter) reloads from the database: it never keeps a wrong view.
Each message also carries the writing transaction's id (`xid`, `pg_current_xact_id()`), so a
receiver that loaded from a database snapshot can tell whether a message is already part of it.
A message too large for one publish (`MAX_MESSAGE_BYTES`: a directory sync that rewrote a whole
directory) is published as a `reload` marker instead: the receiver reloads once.

Messages lost before they reach Redis (Redis unreachable from the writing process, a publish
timing out) cannot be seen by the receivers' numbering: the write is committed and the failure
logged. The change log is the truth: each server process compares, once per
`STREAM_CATCHUP_SECONDS`, the transactions its hubs applied with those the log holds
(`firezone.catchup`), and a hub that missed one reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

logger = logging.getLogger(__name__)

# Larger transactions are announced as a reload marker (the receiver re-reads the database).
MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
# More changes than this cannot fit in MAX_MESSAGE_BYTES (each is well over 100 bytes): the
# publisher announces the reload without encoding them.
MAX_MESSAGE_CHANGES: Final = MAX_MESSAGE_BYTES // 100
# Seconds a subscription may take (Redis unreachable: the hub's load fails, the join with it).
SUBSCRIBE_TIMEOUT: Final = 10.0
# Back-off of the subscriber's reconnect loop, in seconds: at most 1 s, so hubs reload (and
# devices hear of changes made during a Redis outage) within a second of its recovery.
_RECONNECT_DELAYS: Final = (0.1, 0.25, 0.5, 1.0)

_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], seq .. '|' .. ARGV[1])
return seq
"""


def _prefix() -> str:
    return getattr(settings, "STREAM_PREFIX", "fz")


def channel_name(account_id: Any) -> str:
    return f"{_prefix()}:stream:{account_id}"


def seq_key(account_id: Any) -> str:
    return f"{_prefix()}:seq:{account_id}"


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One committed transaction of one account, as a subscriber receives it."""

    seq: int
    xid: int | None
    changes: tuple[dict[str, Any], ...]
    reload: bool = False


def encode(xid: int | None, changes: list[dict[str, Any]]) -> str:
    body = json.dumps({"xid": xid, "changes": changes}, cls=DjangoJSONEncoder)
    if len(body) > MAX_MESSAGE_BYTES:
        return json.dumps({"xid": xid, "reload": True})
    return body


def decode(raw: bytes | str) -> StreamMessage:
    text = raw.decode() if isinstance(raw, bytes) else raw
    seq, _, body = text.partition("|")
    data = json.loads(body)
    return StreamMessage(
        seq=int(seq),
        xid=data.get("xid"),
        changes=tuple(data.get("changes") or ()),
        reload=bool(data.get("reload")),
    )


# --- publishing (sync: called after commit by firezone.changes) ----------------------------------

_sync_client: redis.Redis | None = None
_sync_script: Any = None
_sync_url = ""


def _client() -> tuple[redis.Redis, Any]:
    global _sync_client, _sync_script, _sync_url
    url = settings.REDIS_URL
    if _sync_client is None or url != _sync_url:  # a changed setting (tests) takes effect
        _sync_client = redis.Redis.from_url(url, socket_timeout=5)
        _sync_script = _sync_client.register_script(_PUBLISH)
        _sync_url = url
    return _sync_client, _sync_script


def publish(account_id: Any, xid: int | None, changes: list[dict[str, Any]]) -> int:
    """Publish one transaction's changes of an account; returns its sequence number."""
    client, script = _client()
    keys = [seq_key(account_id), channel_name(account_id)]
    return int(script(keys=keys, args=[encode(xid, changes)], client=client))


def publish_reload(account_id: Any, xid: int | None) -> int:
    """Publish a reload marker for a transaction too large to carry (its receivers re-read)."""
    client, script = _client()
    keys = [seq_key(account_id), channel_name(account_id)]
    return int(script(keys=keys, args=[json.dumps({"xid": xid, "reload": True})], client=client))


async def current_seq(conn: aioredis.Redis, account_id: Any) -> int:
    value = await conn.get(seq_key(account_id))
    return int(value or 0)


# --- subscribing (async: one subscriber per server process and event loop) ------------------------

Handler = Callable[[StreamMessage | None], Awaitable[None]]
"""Receives each message of its account; None means "the connection was re-established: you
may have missed messages" (reload)."""


@dataclass
class StreamSubscriber:
    """One Redis pub/sub connection for every account stream this process follows."""

    url: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    _conn: aioredis.Redis | None = None
    _pubsub: Any = None
    _reader: asyncio.Task | None = None
    _pending: dict[str, asyncio.Future] = field(default_factory=dict)
    _connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def redis(self) -> aioredis.Redis:
        if self._conn is None:
            self._conn = aioredis.Redis.from_url(self.url)
        return self._conn

    async def subscribe(self, account_id: Any, handler: Handler) -> None:
        """Follow an account's stream; returns once Redis confirmed the subscription, so a GET
        of the sequence number afterwards is a safe baseline."""
        channel = channel_name(account_id)
        self.handlers[channel] = handler
        self._ensure_reader()
        await asyncio.wait_for(self._connected.wait(), SUBSCRIBE_TIMEOUT)
        confirmed = asyncio.get_running_loop().create_future()
        self._pending[channel] = confirmed
        try:
            await self._pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed, SUBSCRIBE_TIMEOUT)
        finally:
            self._pending.pop(channel, None)

    async def unsubscribe(self, account_id: Any, handler: Handler) -> None:
        """Stop following, unless another handler took the account over meanwhile."""
        channel = channel_name(account_id)
        if self.handlers.get(channel) != handler:  # == : bound methods are new objects
            return
        del self.handlers[channel]
        if self._pubsub is not None:
            with contextlib.suppress(Exception):  # the connection is re-made without it anyway
                await self._pubsub.unsubscribe(channel)

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_forever())

    async def _connect(self) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=False)
        channels = list(self.handlers)
        if channels:
            await self._pubsub.subscribe(*channels)
        else:
            # A pub/sub connection with nothing to listen to cannot be read: a channel of its own.
            await self._pubsub.subscribe(f"{_prefix()}:stream:-")

    async def _read_forever(self) -> None:
        attempt = 0
        first = True
        while True:
            try:
                await self._connect()
                self._connected.set()
                if not first:
                    logger.warning("device stream back: %d hubs reload", len(self.handlers))
                    # Anything published while we were away is lost for us: every hub reloads.
                    for handler in list(self.handlers.values()):
                        await _guarded(handler(None))
                first, attempt = False, 0
                async for message in self._pubsub.listen():
                    await self._route(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._connected.clear()
                delay = _RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)]
                # One line per outage, not one per attempt.
                log = logger.warning if attempt == 0 else logger.debug
                attempt += 1
                log("device stream connection lost; reconnecting in %ss", delay)
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                await asyncio.sleep(delay)

    async def _route(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        raw = message.get("channel")
        channel: str = raw.decode() if isinstance(raw, bytes) else str(raw)
        if kind == "subscribe":
            future = self._pending.get(channel)
            if future is not None and not future.done():
                future.set_result(None)
            return
        if kind != "message":
            return
        handler = self.handlers.get(channel)
        if handler is None:
            return
        try:
            decoded = decode(message["data"])
        except Exception:
            logger.exception("undecodable device stream message on %s", channel)
            await _guarded(handler(None))  # treat as a gap: reload
            return
        await _guarded(handler(decoded))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.aclose()


async def _guarded(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except Exception:  # a handler's crash must not stop the stream of every other account
        logger.exception("device stream handler crashed")


_subscribers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamSubscriber] = (
    weakref.WeakKeyDictionary()
)


def subscriber() -> StreamSubscriber:
    """The subscriber of the running event loop (one per process in daphne)."""
    loop = asyncio.get_running_loop()
    found = _subscribers.get(loop)
    if found is None:
        found = _subscribers[loop] = StreamSubscriber(url=settings.REDIS_URL)
    return found
