"""The channel layer of the device sockets: channels-redis's, surviving a Redis restart.

Channels runs a consumer as `await_many_dispatch([websocket receive, channel-layer receive])`:
when the layer's receive raises (Redis restarted: a connection error), the consumer dies and
daphne closes the socket with 1011 — every socket of the process at once. Here the receive
waits instead: a connection error is logged once per outage and retried with a short back-off
(`RETRY_DELAYS`) until Redis answers again; redis-py reconnects underneath. Removing a socket
from its groups never fails a disconnect (the memberships expire by themselves).

Redis may come back empty (no persistence): what lived only there — the sockets' group
memberships, presence entries — is written again by the callbacks registered with
`on_recovery` (`gateways.consumers.base`), run once when the first receive after an outage
succeeds. Sends (`send`, `group_send`) and `group_add` still raise during the outage: their
callers answer the device (`503`, an error reply, `flow_creation_failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from channels_redis.core import RedisChannelLayer

from firezone.outage import OUTAGE_ERRORS, describe

logger = logging.getLogger(__name__)

# Pauses between receive attempts while Redis is unreachable, in seconds (the last repeats):
# short enough that the sockets hear of the recovery within a second.
RETRY_DELAYS: Final = (0.1, 0.25, 0.5, 1.0)

Recovery = Callable[[], Awaitable[Any]]


class ResilientRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.down_since: float | None = None
        self._recovery: list[Recovery] = []
        self._recovery_tasks: set[asyncio.Task] = set()

    def on_recovery(self, callback: Recovery) -> None:
        """Run `callback()` each time Redis answers again after an outage (once registered)."""
        if callback not in self._recovery:
            self._recovery.append(callback)

    async def _brpop_with_clean(self, index: int, channel: str, timeout: int) -> Any:
        try:
            return await super()._brpop_with_clean(index, channel, timeout)
        except OUTAGE_ERRORS as exc:
            self._failed(exc)
        await self._wait_for_redis(index)
        return None  # `receive_single` loops on None: the blocking read again

    async def _wait_for_redis(self, index: int) -> None:
        """PING with back-off until Redis answers (not the blocking read, which would only
        return after `brpop_timeout`: the recovery is noticed within a second)."""
        attempt = 0
        while True:
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1
            try:
                await self.connection(index).ping()
            except OUTAGE_ERRORS:
                continue
            self._answered()
            return

    async def _clean_receive_backup(self, index: int, channel: str) -> None:
        # A fire-and-forget task: an outage here would only log "exception never retrieved".
        # The message was handled; at worst it is received again (channels-redis's own caveat).
        with contextlib.suppress(*OUTAGE_ERRORS):
            await super()._clean_receive_backup(index, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        # The membership expires with the group (`group_expiry`): never fail a disconnect.
        with contextlib.suppress(*OUTAGE_ERRORS):
            await super().group_discard(group, channel)

    def _failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning("channel layer: Redis unreachable (%s); retrying", describe(exc))

    def _answered(self) -> None:
        if self.down_since is None:
            return
        seconds = time.monotonic() - self.down_since
        self.down_since = None
        logger.warning("channel layer: Redis reachable again after %.1f s", seconds)
        for callback in list(self._recovery):
            task = asyncio.get_running_loop().create_task(self._recover(callback))
            self._recovery_tasks.add(task)
            task.add_done_callback(self._recovery_tasks.discard)

    async def _recover(self, callback: Recovery) -> None:
        try:
            await callback()
        except OUTAGE_ERRORS as exc:  # down again: the next recovery runs it again
            logger.warning("channel layer: recovery step failed (%s)", describe(exc))
        except Exception:
            logger.exception("channel layer: recovery step crashed")
