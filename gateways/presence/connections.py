"""Redis clients of the presence registry (one async client per event loop, one sync client
per process) and its settings, read at call time so tests can override them."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any, Final

import redis
import redis.asyncio as aioredis
from django.conf import settings

from gateways.presence.scripts import SCRIPTS

if TYPE_CHECKING:
    from gateways.presence.flight import Flight
    from gateways.presence.tracker import PresenceTracker

# Conns per Lua call when refreshing or sweeping: bounds how long one script blocks Redis.
BATCH: Final = 1000


def key_prefix() -> str:
    return getattr(settings, "PRESENCE_KEY_PREFIX", "presence")


def ttl_ms() -> int:
    return max(1, int(float(getattr(settings, "PRESENCE_TTL_SECONDS", 45)) * 1000))


def refresh_seconds() -> float:
    return float(getattr(settings, "PRESENCE_REFRESH_SECONDS", 15))


class LoopState:
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
        self.scripts = {name: self.client.register_script(src) for name, src in SCRIPTS.items()}
        self.trackers: weakref.WeakSet[PresenceTracker] = weakref.WeakSet()
        self.refresher: asyncio.Task | None = None
        self.inflight: dict[Any, Flight] = {}


_loop_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
    weakref.WeakKeyDictionary()
)


def loop_state() -> LoopState:
    loop = asyncio.get_running_loop()
    state = _loop_states.get(loop)
    if state is None:
        state = _loop_states[loop] = LoopState()
    return state


_sync_client: tuple[str, redis.Redis, dict[str, Any]] | None = None


def sync_client() -> tuple[redis.Redis, dict[str, Any]]:
    global _sync_client
    if _sync_client is None or _sync_client[0] != settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}
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
