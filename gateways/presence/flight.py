"""Single-flight reads: concurrent identical reads of one process share one Redis call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gateways.presence.connections import LoopState, loop_state


class Flight:
    """Shares one read among concurrent callers of one process, but never hands a caller a read
    that started before it asked: whoever received a diff must see the state after that diff.
    Callers arriving while a read runs share the *next* read, started when this one ends."""

    def __init__(self, state: LoopState, key: Any) -> None:
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
        assert start is not None  # queued with its waiters
        self._launch(start).add_done_callback(lambda f: _relay_outcome(f, waiters))

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
    elif (error := source.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


async def coalesce(state: LoopState, key: Any, start: Callable[[], Awaitable[Any]]) -> Any:
    flight = state.inflight.get(key)
    if flight is None:
        flight = state.inflight[key] = Flight(state, key)
    return await flight.join(start)


async def coalesced(flight: Any, start: Callable[[], Awaitable[Any]]) -> Any:
    """`await start()`, shared by the concurrent callers in this process asking for the same
    `flight`; each caller gets a result read after it asked."""
    return await coalesce(loop_state(), ("user", flight), start)
