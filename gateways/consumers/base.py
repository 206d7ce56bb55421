"""`DeviceConsumer`: what the client, gateway and relay sockets share on top of `PhoenixConsumer`.

* Connect: `authenticate_device(params, ctx)` (sync, run through `database_sync_to_async`) calls
  one of `gateways.connect.authenticate_*` and returns the session's token id, account id and
  device id. A refusal is answered with its HTTP status and body (§2.6), after the throttling
  delay of `gateways.connect.record_connect_failure` when the remote IP keeps failing.
* Groups: the session group `session.<token_id>` (PhoenixConsumer: token deletion closes the
  socket), the account change group `account.<account_id>` (`domain.change` events, see
  `firezone.changes`; relays opt out) and the device group `<kind>.<device_id>`.
* Presence: a `gateways.presence.PresenceTracker` keyed by this socket's channel name; every
  entry is removed when the joined channel ends (leave, re-join, close) and when the socket goes
  away. A crashed process's entries expire on their own (presence TTL).

Channel-layer events reach `handle_change(change)` (`domain.change`) and
`handle_presence_diff(event)` (`presence.diff`), both no-ops here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from channels.db import database_sync_to_async

from firezone.changes import Change, account_group
from firezone.phoenix.consumer import IDLE_TIMEOUTS, PhoenixConsumer
from firezone.phoenix.rejection import ConnectRejected
from gateways.connect import ConnectContext, connect_context, throttled

if TYPE_CHECKING:
    from gateways.presence import PresenceTracker

logger = logging.getLogger(__name__)


def device_group(kind: str, device_id: Any) -> str:
    """The channel-layer group of one device: `client.<id>`, `gateway.<id>`, `relay.<id>`."""
    return f"{kind}.{device_id}"


class DeviceConsumer(PhoenixConsumer):
    """Base of the three device sockets; `topic_name` is the device kind."""

    # Whether the socket listens to every change of its account (clients and gateways do).
    listens_to_account: ClassVar[bool] = True

    connect_ctx: ConnectContext | None = None
    account_id: Any = None
    device_id: Any = None
    presence: PresenceTracker | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.topic_name in IDLE_TIMEOUTS and "idle_timeout" not in cls.__dict__:
            cls.idle_timeout = IDLE_TIMEOUTS[cls.topic_name]

    # ---------------------------------------------------------------- subclass hooks

    def authenticate_device(self, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, ...]:
        """Sync: authenticate and upsert; return `(token_id, account_id, device_id)`."""
        raise NotImplementedError

    def extra_groups(self) -> list[str]:
        """More channel-layer groups to join once authenticated."""
        return []

    async def handle_change(self, change: Change) -> None:
        """A committed change of the account (or of this device's own group)."""

    async def handle_presence_diff(self, event: dict[str, Any]) -> None:
        """A `presence.diff` of a presence group this socket subscribed to."""

    # ---------------------------------------------------------------- connect

    async def authenticate(self, scope: dict[str, Any]) -> None:
        ctx = connect_context(scope)
        self.connect_ctx = ctx
        try:
            token_id, account_id, device_id = await database_sync_to_async(throttled)(
                self.authenticate_device, self.params, ctx
            )
        except ConnectRejected as rejected:
            delay = getattr(rejected, "delay", 0.0)
            if delay:
                await asyncio.sleep(delay)
            raise
        self.session_token_id = token_id
        self.account_id = account_id
        self.device_id = device_id
        groups = [device_group(self.topic_name, device_id), *self.extra_groups()]
        if self.listens_to_account and account_id is not None:
            groups.append(account_group(account_id))
        for group in groups:
            await self.subscribe(group)

    async def subscribe(self, group: str) -> None:
        """Join a channel-layer group for the rest of the socket's life."""
        if group in self.groups:
            return
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)

    async def unsubscribe(self, group: str) -> None:
        if group not in self.groups:
            return
        self.groups.remove(group)
        await self.channel_layer.group_discard(group, self.channel_name)

    # ---------------------------------------------------------------- presence

    async def track(self, topic: str, key: Any, meta: dict[str, Any]) -> None:
        """Register this socket in a presence topic (removed when the channel ends)."""
        if self.presence is None:
            from gateways.presence import PresenceTracker

            self.presence = PresenceTracker(self.channel_name)
        await self.presence.track(topic, str(key), meta)

    async def untrack_all(self) -> None:
        presence, self.presence = self.presence, None
        if presence is None:
            return
        try:
            await presence.untrack_all()
        except Exception:  # the entries expire by themselves; never fail a disconnect
            logger.exception("%s could not untrack its presence", type(self).__name__)

    async def leave(self, reason: str) -> None:
        await self.untrack_all()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Untrack first: channels discards the groups before calling `disconnect`, and a failing
        # discard would skip it.
        await self.untrack_all()
        await super().websocket_disconnect(message)

    # ---------------------------------------------------------------- channel-layer events

    async def domain_change(self, event: dict[str, Any]) -> None:
        await self.handle_change(Change.from_message(event))

    async def presence_diff(self, event: dict[str, Any]) -> None:
        await self.handle_presence_diff(event)
