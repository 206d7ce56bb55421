"""`DeviceConsumer`: what the client, gateway and relay sockets share on top of `PhoenixConsumer`.

* Connect: `authenticate_device(params, ctx)` (sync, run on the device database pool,
  `firezone.db`) calls one of `gateways.connect.authenticate_*` and returns the session's token
  id, account id and device id. A refusal is answered with its HTTP status and body (§2.6), after
  the throttling delay of `gateways.connect.record_connect_failure` when the remote IP keeps
  failing.
* Groups: the session group `session.<token_id>` (PhoenixConsumer: token deletion closes the
  socket) and the device group `<kind>.<device_id>` (flows, ICE, disconnects addressed to this
  device). Account-wide changes do NOT come through the channel layer: client and gateway
  sockets attach to their account's process-local hub (`gateways.hub`).
* Presence: a `gateways.presence.PresenceTracker` keyed by this socket's channel name; every
  entry is removed when the joined channel ends (leave, re-join, close) and when the socket goes
  away. A crashed process's entries expire on their own (presence TTL).
* Background work and timers (`spawn`, `call_later`) are owned by the joined channel: they are
  cancelled when it ends, and a crash in them is logged, never raised.
* Relays (§4.4): `relay_actions(actions)` performs what a `RelayWatch` asks (subscribe,
  unsubscribe, `relays_presence`, debounce timers); subclasses say how relay credentials are
  rendered (`relay_views`).
* Metrics: open sockets, joins and refused connects per kind (`firezone.metrics`).

Channel-layer events reach `handle_change(change)` (`domain.change`, only relays listen to
some) and `handle_presence_diff(event)` (`presence.diff`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

from channels_redis.core import RedisChannelLayer
from django.conf import settings

from accounts.request import ConnectContext, connect_context
from firezone import catchup, metrics
from firezone.changes import Change, session_group
from firezone.channel_layer import ResilientRedisChannelLayer
from firezone.db import db_call
from firezone.outage import UNAVAILABLE_BODY, describe, is_outage
from firezone.phoenix.consumer import IDLE_TIMEOUTS, PhoenixConsumer
from firezone.phoenix.rejection import ConnectRejected
from gateways import wire
from gateways.connect import throttled
from gateways.presence import PresenceTracker, refresh_all
from gateways.relay_selection import (
    Push,
    RelayWatch,
    SchedulePush,
    Subscribe,
    Unsubscribe,
    relay_watch_handle,
)

if TYPE_CHECKING:
    from gateways.presence import PresenceTracker

logger = logging.getLogger(__name__)


def device_group(kind: str, device_id: Any) -> str:
    """The channel-layer group of one device: `client.<id>`, `gateway.<id>`, `relay.<id>`."""
    return f"{kind}.{device_id}"


# Sockets of this process by device and by channel name: a gateway's answer to a client whose
# socket is here (`flow_created`, ICE candidates) is handed over directly, without a Redis round
# trip; other messages go through the channel layer. (Messages to gateways always take the
# channel layer: its group is the contract the protocol tests observe.) One registry per loop.
_local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Local] = weakref.WeakKeyDictionary()


class _Local:
    def __init__(self) -> None:
        self.devices: dict[tuple[str, str], set[DeviceConsumer]] = {}
        self.channels: dict[str, DeviceConsumer] = {}
        self.refresher: asyncio.Task | None = None

    async def recover(self) -> None:
        """Redis answers again after an outage, maybe empty (restarted without persistence):
        write this process's group memberships and presence entries again, so gateways get
        flows and clients see their gateways online without waiting for the periodic refresh."""
        groups = await refresh_groups(self)
        await refresh_all()
        logger.warning("recovered %d group memberships after a Redis outage", groups)


async def refresh_groups(local: _Local) -> int:
    """Re-add every live device socket of this process to its channel-layer groups.

    channels-redis's core layer drops a group member `group_expiry` (a day) after it joined,
    whether or not it is still connected: without this, a gateway connected for more than a
    day would stop receiving `authorize_flow`, and a token deletion would no longer close a
    day-old socket. Returns the memberships refreshed."""
    consumers = list(local.channels.values())
    layer = consumers[0].channel_layer if consumers else None
    if not isinstance(layer, RedisChannelLayer) or len(layer.hosts) != 1:
        return 0
    memberships = [(g, c.channel_name) for c in consumers for g in c.groups]
    await _group_add_all(layer, memberships)
    return len(memberships)


async def _group_add_all(layer: RedisChannelLayer, memberships: list[tuple[str, str]]) -> None:
    """What channels-redis's `group_add` does (ZADD the channel, EXPIRE the group), for many
    (group, channel) pairs in one pipelined round trip."""
    if not memberships:
        return
    now = time.time()
    async with layer.connection(0).pipeline(transaction=False) as pipe:
        for group, channel in memberships:
            assert layer.require_valid_group_name(group), "Group name not valid"
            key = layer._group_key(group)
            pipe.zadd(key, {channel: now})
            pipe.expire(key, layer.group_expiry)
        await pipe.execute()


async def _refresh_groups_forever(local: _Local) -> None:
    while local.channels:
        layer = next(iter(local.channels.values())).channel_layer
        await asyncio.sleep(max(60.0, getattr(layer, "group_expiry", 86400) / 4))
        try:
            await refresh_groups(local)
        except Exception:  # Redis away: try again next period
            logger.exception("could not refresh the device sockets' channel-layer groups")


def _registry() -> _Local:
    loop = asyncio.get_running_loop()
    found = _local.get(loop)
    if found is None:
        found = _local[loop] = _Local()
    return found


class DeviceConsumer(PhoenixConsumer):
    """Base of the three device sockets; `topic_name` is the device kind."""

    connect_ctx: ConnectContext | None = None
    account_id: Any = None
    device_id: Any = None
    presence: PresenceTracker | None = None
    watch: RelayWatch | None = None  # set while the channel is joined (clients and gateways)
    _tasks: set[asyncio.Task] | None = None
    _timers: dict[int, asyncio.TimerHandle] | None = None
    _counted = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.topic_name in IDLE_TIMEOUTS and "idle_timeout" not in cls.__dict__:
            cls.idle_timeout = IDLE_TIMEOUTS[cls.topic_name]

    # ---------------------------------------------------------------- subclass hooks

    def authenticate_device(self, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, ...]:
        """Sync: authenticate and upsert; return `(token_id, account_id, device_id)`."""
        raise NotImplementedError

    def session_ends(self) -> list[str]:
        # Disabling the account closes its clients and gateways (gateways.services.sessions);
        # a relay goes with its row. The catch-up closes them if that message was lost.
        ends = super().session_ends()
        if self.topic_name in ("client", "gateway") and self.account_id is not None:
            ends.append(catchup.account_end(self.account_id))
        elif self.topic_name == "relay" and self.device_id is not None:
            ends.append(catchup.relay_end(self.device_id))
        return ends

    def extra_groups(self) -> list[str]:
        """More channel-layer groups to join once authenticated."""
        return []

    async def handle_change(self, change: Change) -> None:
        """A committed change of the account (or of this device's own group)."""

    # ---------------------------------------------------------------- connect

    async def authenticate(self, scope: dict[str, Any]) -> None:
        ctx = connect_context(scope)
        self.connect_ctx = ctx
        layer = self.channel_layer
        if isinstance(layer, ResilientRedisChannelLayer) and layer.down_since is not None:
            # Redis is known to be down (this process's receive is waiting for it): refuse now,
            # before the device's row is written (the device retries a 503).
            metrics.REJECTIONS.labels(kind=self.topic_name, status="503").inc()
            raise ConnectRejected(503, UNAVAILABLE_BODY)
        try:
            token_id, account_id, device_id = await asyncio.wait_for(
                db_call(throttled, self.authenticate_device, self.params, ctx),
                getattr(settings, "DEVICE_CONNECT_DB_SECONDS", 3.0),
            )  # a TimeoutError is an outage: 503 (the thread finishes or fails on its own)
        except ConnectRejected as rejected:
            metrics.REJECTIONS.labels(kind=self.topic_name, status=str(rejected.status)).inc()
            delay = rejected.delay
            if delay:
                await asyncio.sleep(delay)
            raise
        except Exception as exc:
            status = "503" if is_outage(exc) else "500"
            metrics.REJECTIONS.labels(kind=self.topic_name, status=status).inc()
            raise
        self.session_token_id = token_id
        self.account_id = account_id
        self.device_id = device_id
        await self.subscribe_many(
            [
                session_group(token_id),
                device_group(self.topic_name, device_id),
                *self.extra_groups(),
            ]
        )
        local = _registry()
        local.devices.setdefault((self.topic_name, str(device_id)), set()).add(self)
        local.channels[self.channel_name] = self
        if local.refresher is None or local.refresher.done():
            local.refresher = asyncio.get_running_loop().create_task(_refresh_groups_forever(local))
        if isinstance(self.channel_layer, ResilientRedisChannelLayer):
            self.channel_layer.on_recovery(local.recover)
        self._counted = True
        metrics.SOCKETS.labels(kind=self.topic_name).inc()

    async def subscribe(self, group: str) -> None:
        """Join a channel-layer group for the rest of the socket's life."""
        await self.subscribe_many([group])

    async def subscribe_many(self, groups: list[str]) -> None:
        """Join several groups; on channels-redis's core layer in one Redis round trip (what
        `group_add` does for each: ZADD the channel, EXPIRE the group) instead of two each."""
        groups = [g for g in dict.fromkeys(groups) if g not in self.groups]
        if not groups:
            return
        layer = self.channel_layer
        if isinstance(layer, RedisChannelLayer) and len(layer.hosts) == 1 and len(groups) > 1:
            await _group_add_all(layer, [(group, self.channel_name) for group in groups])
        else:
            for group in groups:
                await layer.group_add(group, self.channel_name)
        self.groups.extend(groups)

    async def unsubscribe(self, group: str) -> None:
        if group not in self.groups:
            return
        self.groups.remove(group)
        await self.channel_layer.group_discard(group, self.channel_name)

    # ---------------------------------------------------------------- presence

    async def track_many(self, entries: list[tuple[str, Any, dict[str, Any]]]) -> None:
        """Several `track`s in one Redis call."""
        if self.presence is None:
            self.presence = PresenceTracker(self.channel_name)
        await self.presence.track_many([(topic, str(key), meta) for topic, key, meta in entries])

    async def untrack_all(self) -> None:
        presence, self.presence = self.presence, None
        if presence is None:
            return
        try:
            await presence.untrack_all()
        except Exception as exc:  # the entries expire by themselves; never fail a disconnect
            if is_outage(exc):
                logger.warning("%s could not untrack: %s", type(self).__name__, describe(exc))
                return
            logger.exception("%s could not untrack its presence", type(self).__name__)

    async def leave(self, reason: str) -> None:
        self.cancel_background()
        watch, self.watch = self.watch, None
        if watch is not None and reason != "disconnect":  # groups go with the socket anyway
            try:
                await self.relay_actions(watch.stop())
            except Exception:  # the groups expire anyway; never fail a leave
                logger.exception("%s could not stop its relay watch", type(self).__name__)
        await self.untrack_all()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Untrack first: channels discards the groups before calling `disconnect`, and a failing
        # discard would skip it.
        if self._counted:
            self._counted = False
            metrics.SOCKETS.labels(kind=self.topic_name).dec()
            local = _registry()
            key = (self.topic_name, str(self.device_id))
            sockets = local.devices.get(key)
            if sockets is not None:
                sockets.discard(self)
                if not sockets:
                    del local.devices[key]
            local.channels.pop(self.channel_name, None)
        await self.untrack_all()
        await super().websocket_disconnect(message)

    # ---------------------------------------------------------------- messages to other sockets

    async def send_to_device(self, kind: str, device_id: Any, message: dict[str, Any]) -> None:
        """`group_send` to the device's group, or straight to its sockets in this process."""
        local = _registry().devices.get((kind, str(device_id)))
        if local:
            for consumer in list(local):
                await consumer.dispatch(message)
        else:
            await self.channel_layer.group_send(device_group(kind, device_id), message)

    async def send_to_channel(self, channel: str, message: dict[str, Any]) -> None:
        """`send` to a socket's channel, or straight to it when it is in this process."""
        consumer = _registry().channels.get(channel)
        if consumer is not None:
            await consumer.dispatch(message)
        else:
            await self.channel_layer.send(channel, message)

    # ---------------------------------------------------------------- background work

    def spawn(self, coro: Any) -> None:
        """Run `coro` beside the socket until the channel ends; a crash is only logged."""
        if self._tasks is None:
            self._tasks = set()
        task = asyncio.get_running_loop().create_task(self._guarded(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_outage(exc):
                logger.warning("%s %s: %s", self.topic_name, self.device_id, describe(exc))
                return
            logger.exception("%s %s background work crashed", self.topic_name, self.device_id)

    def cancel_background(self) -> None:
        for handle in (self._timers or {}).values():
            handle.cancel()
        current = asyncio.current_task()
        for task in list(self._tasks or ()):
            if task is not current:  # e.g. a change being worked through closes the channel
                task.cancel()
        self._timers, self._tasks = None, None

    # ---------------------------------------------------------------- relays (§4.4)

    def relay_views(self, relays: Any) -> list[dict[str, Any]]:
        """The `relays` entries of `init` / `relays_presence` for this device."""
        raise NotImplementedError

    def device_location(self) -> tuple[float | None, float | None]:
        return None, None

    async def relay_actions(self, actions: Any) -> None:
        actions = list(actions)
        # The groups first, together (one round trip): nothing else depends on their order.
        await self.subscribe_many([a.group for a in actions if isinstance(a, Subscribe)])
        for action in actions:
            if isinstance(action, Subscribe):
                continue
            elif isinstance(action, Unsubscribe):
                await self.unsubscribe(action.group)
            elif isinstance(action, Push):
                payload = wire.relays_presence(
                    disconnected_ids=action.disconnected_ids,
                    connected=self.relay_views(action.connected),
                )
                await self.push(wire.RELAYS_PRESENCE, payload)
            elif isinstance(action, SchedulePush):
                if self._timers is None:
                    self._timers = {}
                loop = asyncio.get_running_loop()
                self._timers[action.timer_id] = loop.call_later(
                    action.delay, self._relay_timer_elapsed, action.timer_id
                )

    def _relay_timer_elapsed(self, timer_id: int) -> None:
        if self._timers is not None:
            self._timers.pop(timer_id, None)
        if self.watch is not None:
            self.spawn(self.relay_actions(self.watch.timer_fired(timer_id)))

    async def handle_presence_diff(self, event: dict[str, Any]) -> None:
        if self.watch is None or self.joined_topic is None:
            return
        lat, lon = self.device_location()
        await self.relay_actions(await relay_watch_handle(self.watch, event, lat=lat, lon=lon))

    # ---------------------------------------------------------------- channel-layer events

    async def domain_change(self, event: dict[str, Any]) -> None:
        await self.handle_change(Change.from_message(event))

    async def presence_diff(self, event: dict[str, Any]) -> None:
        await self.handle_presence_diff(event)
