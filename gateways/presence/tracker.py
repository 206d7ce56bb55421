"""The presence entries of one socket, kept alive by one refresh task per event loop."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable

from firezone.outage import describe, is_outage
from gateways.presence.connections import (
    BATCH,
    LoopState,
    key_prefix,
    loop_state,
    refresh_seconds,
    ttl_ms,
)
from gateways.presence.registry import track_many, untrack, untrack_conn

logger = logging.getLogger(__name__)


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
    state = loop_state()
    state.trackers.add(tracker)
    if state.refresher is None or state.refresher.done():
        state.refresher = asyncio.get_running_loop().create_task(
            _refresh_loop(state), name="presence-refresh"
        )


async def _refresh_loop(state: LoopState) -> None:
    while True:
        await asyncio.sleep(refresh_seconds())
        trackers = [t for t in state.trackers if t._entries and not t._closed]
        if not trackers:
            state.refresher = None  # restarted by the next track()
            return
        try:
            await refresh(trackers)
        except Exception as exc:  # Redis briefly away: try again next tick; entries last 3 ticks
            if is_outage(exc):
                logger.warning("presence: refresh failed (%s)", describe(exc))
            else:
                logger.exception("presence: refresh failed")


async def refresh_all() -> None:
    """Refresh every tracker of this event loop now (after a Redis outage: re-registers the
    entries a restarted Redis lost, publishing their joins)."""
    await refresh([t for t in loop_state().trackers if t._entries and not t._closed])


async def refresh(trackers: Iterable[PresenceTracker]) -> None:
    """Extend the deadline of the trackers' connections, in batches; re-register the entries of
    connections Redis lost (swept during a stall, or Redis restarted), publishing joins."""
    by_conn = {t.conn_id: t for t in trackers}
    conn_ids = list(by_conn)
    script, prefix, ttl = loop_state().scripts["refresh"], key_prefix(), ttl_ms()
    for i in range(0, len(conn_ids), BATCH):
        missing = await script(args=[prefix, ttl, *conn_ids[i : i + BATCH]])
        for conn_id in missing:
            await by_conn[conn_id]._retrack()
