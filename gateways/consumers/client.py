"""The client socket, topic `"client"` (protocol.md §3.1, §4.4, §5).

Join → ok, then `after_join` (§3.1.1): the periodic recompute is scheduled; the connectable
resources are computed (`resources.access`: one load of the actor's grants and granted resources,
cached on the socket); relays are selected and watched (`RelayWatch`); the client is tracked in
`account_clients:<account>` (`{online_at}`) and `actor_clients:<actor>` (`{token_id}`); the
client's flows for resources it can no longer reach are deleted; `init` is pushed.

Requests (C→S): `create_flow` (§3.1.6/§5.4; answered by a push, never a reply),
`broadcast_(invalidated_)ice_candidates` (§3.1.7), the legacy `prepare_connection`,
`request_connection`, `reuse_connection` (§3.1.9). Messages from gateway sockets (channel layer,
see /tmp/issue4 contract): `client.flow_authorized` → `flow_created`, `client.connection_ready` →
the delayed reply of a legacy `request_connection`, `client.ice_candidates` → `(invalidate_)
ice_candidates`. Messages to gateways go to the group `gateway.<id>`; a gateway without a socket
simply receives nothing.

Decisions:

* Tokens without expiry (protocol.md §9 item 12): accepted. Relay credentials then expire
  `NO_EXPIRY_RELAY_CREDENTIALS` (7 days) after each push (`init`, `relays_presence`), like the
  gateways' rolling 90 days; a client connected longer gets fresh credentials with every
  `relays_presence` and every reconnect. Flows of such sessions are capped at
  `resources.services.flows.MAX_FLOW_LIFETIME` (7 days) by `resources.access`.
* Change feed (§5.6). Every change of the account reaches every client socket of the account,
  so `_classify` is a pure in-memory test against what this socket cached: the actor's group
  ids, the resource ids its policies grant, the sites of those resources, its own client and
  account ids. Only a change that can matter triggers a database reload, and reloads are
  coalesced: the socket marks itself dirty and queues one `client.recompute` message to its own
  channel, so a burst of changes (a resource update with its connections) is read once, after
  the burst, in order with everything else the socket handles. Loads of sockets of the same
  actor in one process are shared (`presence.coalesced`).
* LSNs. The change log's `lsn` is taken inside the writing transaction, so two transactions can
  commit (and publish) in the other order; dropping every change with a smaller lsn than the
  last one seen would then lose the later commit. Reactions that re-read the database are
  idempotent, so only exact duplicates are dropped there; the two reactions that apply a row
  image directly (the account `config` → `config_changed`, the own client's `verified_at`) keep
  a per-row lsn watermark and ignore older images of that row.
* Every state change of the socket happens in the consumer's dispatch (one message at a time):
  timers (the periodic recompute, relay debounce) only queue a message to the socket's own
  channel. Such messages carry the join generation, so a timer of an ended channel is ignored.
* The periodic recompute (`CLIENT_RECOMPUTE_SECONDS`, default 60, §5.7) re-evaluates the cached
  grants with the current time (time-window conditions) without reading the database: every
  change that can alter the grants is pushed by the change feed. A socket whose grants have no
  time condition skips it altogether.
* The own client row deleted → `close_channel()`: `phx_close`, then the WebSocket is closed.
  connlib reacts to `phx_close` by dropping the WebSocket and reconnecting anyway (§1.9); closing
  it here means a socket whose client row is gone is never re-joined.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from accounts.auth import Subject
from accounts.models import Account, ActorGroupMembership
from firezone.changes import Change
from firezone.errors import NotFound, Refused
from firezone.phoenix.consumer import NO_REPLY, ErrorReply, JoinError
from firezone.phoenix.framing import Message
from gateways import crypto, presence, wire
from gateways.connect import ConnectContext, authenticate_client
from gateways.consumers.base import DeviceConsumer, device_group
from gateways.models import Client, Gateway
from gateways.relay_selection import (
    Action,
    Push,
    RelayCandidate,
    RelayWatch,
    SchedulePush,
    Subscribe,
    Unsubscribe,
    relay_watch_handle,
    relay_watch_start,
)
from gateways.turn import relay_views
from resources import access as ra
from resources.conditions import RequestContext
from resources.services.flows import flow_authorize, flows_delete_stale_for_client

logger = logging.getLogger(__name__)

# §9 item 12: relay credentials of a session whose token never expires.
NO_EXPIRY_RELAY_CREDENTIALS: Final = timedelta(days=7)
# Exact-duplicate suppression window of the change feed.
_SEEN_LSNS: Final = 512
# The only condition property whose outcome changes with the clock (§5.3).
TIME_PROPERTY: Final = "current_utc_datetime"
# Policy fields whose change Elixir handles as "delete, then insert" (§5.6).
_POLICY_GRANT_FIELDS: Final = ("conditions", "resource_id", "actor_group_id")


def recompute_seconds() -> float:
    return float(getattr(settings, "CLIENT_RECOMPUTE_SECONDS", 60))


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def _image_ids(change: Change, name: str) -> set[str]:
    """The values of column `name` in the change's old and new images, as strings."""
    return {str(image[name]) for image in (change.old, change.new) if image and image.get(name)}


# --- database work (sync, through database_sync_to_async) ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Grants:
    """What the socket knows about the actor's access, from one load."""

    access: ra.ClientAccess
    group_ids: frozenset[str]


def _load_grants(client: Client) -> _Grants:
    """Three queries: the actor's policies and granted resources (`client_access_load`) and its
    group ids (a policy created later for one of them concerns this client)."""
    access = ra.client_access_load(client)
    group_ids = ActorGroupMembership.objects.filter(
        account_id=client.account_id, actor_id=client.actor_id
    ).values_list("group_id", flat=True)
    return _Grants(access=access, group_ids=frozenset(str(g) for g in group_ids))


@dataclass(frozen=True, slots=True)
class _JoinLoad:
    grants: _Grants
    config: dict[str, Any]
    verified: bool
    connectable: list[ra.AccessResource]


@dataclass(slots=True)
class _FlowResult:
    """Outcome of the database part of a flow request: a failure reason, or what to send."""

    reason: str | None = None
    violated_properties: tuple[str, ...] = ()
    gateway: Gateway | None = None
    message: dict[str, Any] | None = None


# --- the consumer --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Dirty:
    """A recompute queued to the socket's own channel and not yet run."""

    queued: bool = False
    reload: bool = False
    broken_policies: set[str] = field(default_factory=set)


class ClientConsumer(DeviceConsumer):
    topic_name = "client"

    subject: Subject | None = None
    client: Client | None = None

    def authenticate_device(self, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, ...]:
        self.subject, self.client = authenticate_client(params, ctx)
        self._reset()
        return self.subject.token_id, self.client.account_id, self.client.pk

    def _reset(self) -> None:
        """Per-channel state (a re-join starts over)."""
        self.grants: _Grants | None = None
        self.config: dict[str, Any] = {}
        self.verified = False
        self.told: dict[str, dict[str, Any]] = {}  # resource id -> view last pushed
        self.site_ids: frozenset[str] = frozenset()
        self._time_bound = False  # some grant has a time-window condition
        self.granted_ids: frozenset[str] = frozenset()
        self.watch: RelayWatch | None = None
        self.dirty = _Dirty()
        self._row_lsn: dict[tuple[str, str], int] = {}
        self._seen: deque[int] = deque(maxlen=_SEEN_LSNS)
        self._seen_set: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self.generation = getattr(self, "generation", 0) + 1

    # ---------------------------------------------------------------- join (§3.1.1)

    async def join(self, topic: str, payload: Any, message: Message) -> dict[str, Any] | JoinError:
        return {}

    async def after_join(self) -> None:
        assert self.client is not None and self.subject is not None
        self._reset()
        generation = self.generation
        self._spawn(self._periodic(generation))

        load = await database_sync_to_async(self._join_load)()
        self.config, self.verified = load.config, load.verified
        self._adopt(load.grants)
        self.told = {str(r.id): wire.client_resource_view(r) for r in load.connectable}

        self.watch = RelayWatch(self.account_id)
        await self._perform(self.watch.begin())
        selection, actions = await relay_watch_start(
            self.watch,
            lat=self.client.last_seen_remote_ip_location_lat,
            lon=self.client.last_seen_remote_ip_location_lon,
        )
        await self._perform(actions)

        await self.track(presence.account_clients_topic(self.account_id), self.device_id, {})
        await self.track(
            presence.actor_clients_topic(self.client.actor_id),
            self.device_id,
            {"token_id": str(self.session_token_id)},
        )
        await self.push(
            wire.INIT,
            wire.client_init(
                resources=list(self.told.values()),
                relays=self._relay_views(selection),
                interface=wire.interface_view(self.client, self.config),
            ),
        )

    def _join_load(self) -> _JoinLoad:
        assert self.client is not None
        client = self.client
        row = Account.objects.filter(pk=client.account_id).values_list("config", flat=True).first()
        verified_at = Client.objects.filter(pk=client.pk).values_list("verified_at", flat=True)
        # A client verified or un-verified between connect and join counts as it is now.
        self.verified = bool(verified_at and verified_at[0] is not None)
        grants = _load_grants(client)
        connectable = grants.access.connectable(self._ctx(), client.last_seen_version)
        flows_delete_stale_for_client(
            client=client, connectable_resource_ids=[r.id for r in connectable]
        )
        return _JoinLoad(
            grants=grants, config=row or {}, verified=self.verified, connectable=connectable
        )

    async def leave(self, reason: str) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        watch, self.watch = self.watch, None
        if watch is not None:
            actions = watch.stop()
            if reason != "disconnect":  # the socket's groups are being discarded anyway
                await self._perform(actions)
        self._reset()
        await super().leave(reason)

    # ---------------------------------------------------------------- helpers

    def _ctx(self, now: datetime | None = None) -> RequestContext:
        """Conditions are evaluated against this session's connection (§5.3)."""
        assert self.client is not None and self.subject is not None
        identity = self.subject.identity
        return RequestContext(
            now=now or timezone.now(),
            remote_ip=self.client.last_seen_remote_ip,
            remote_ip_location_region=self.client.last_seen_remote_ip_location_region,
            provider_id=identity.provider_id if identity is not None else None,
            client_verified=self.verified,
        )

    def _adopt(self, grants: _Grants) -> None:
        self.grants = grants
        self._time_bound = any(
            condition.get("property") == TIME_PROPERTY
            for resource_grants in grants.access.grants.values()
            for grant in resource_grants
            for condition in grant.conditions
            if isinstance(condition, Mapping)
        )
        self.granted_ids = frozenset(str(r) for r in grants.access.grants)
        self.site_ids = frozenset(
            str(site.id) for r in grants.access.resources.values() for site in r.sites
        )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _to_self(self, message: dict[str, Any]) -> None:
        """Queue a message to this socket's own channel (handled in dispatch order)."""
        await self.channel_layer.send(self.channel_name, message)

    def _relay_expiry(self) -> int:
        assert self.subject is not None
        expires_at = self.subject.expires_at
        if expires_at is None:
            return int(time.time() + NO_EXPIRY_RELAY_CREDENTIALS.total_seconds())
        return int(expires_at.timestamp())

    def _relay_views(self, relays: Iterable[RelayCandidate]) -> list[dict[str, Any]]:
        assert self.client is not None
        return relay_views(relays, self.client.public_key, self._relay_expiry())

    async def _online_gateway_ids(self) -> set[str]:
        return set(await presence.list_presences(presence.account_gateways_topic(self.account_id)))

    # ---------------------------------------------------------------- relays (§4.4)

    async def _perform(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Subscribe):
                await self.subscribe(action.group)
            elif isinstance(action, Unsubscribe):
                await self.unsubscribe(action.group)
            elif isinstance(action, Push):
                await self.push(
                    wire.RELAYS_PRESENCE,
                    wire.relays_presence(
                        disconnected_ids=action.disconnected_ids,
                        connected=self._relay_views(action.connected),
                    ),
                )
            elif isinstance(action, SchedulePush):
                message = {
                    "type": "client.relay_timer",
                    "generation": self.generation,
                    "timer_id": action.timer_id,
                }
                loop = asyncio.get_running_loop()
                self._timers.append(
                    loop.call_later(action.delay, lambda m=message: self._spawn(self._to_self(m)))
                )

    async def handle_presence_diff(self, event: dict[str, Any]) -> None:
        if self.watch is None or self.client is None:
            return
        await self._perform(
            await relay_watch_handle(
                self.watch,
                event,
                lat=self.client.last_seen_remote_ip_location_lat,
                lon=self.client.last_seen_remote_ip_location_lon,
            )
        )

    async def client_relay_timer(self, event: dict[str, Any]) -> None:
        if self.watch is None or event.get("generation") != self.generation:
            return
        await self._perform(self.watch.timer_fired(int(event["timer_id"])))

    # ---------------------------------------------------------------- recomputing (§5.2, §5.7)

    async def _periodic(self, generation: int) -> None:
        while True:
            await asyncio.sleep(recompute_seconds())
            # Only the clock can change the result between changes: without a time condition
            # there is nothing to recompute (and no message to queue).
            if not self._time_bound:
                continue
            try:
                await self._to_self({"type": "client.periodic", "generation": generation})
            except Exception:  # the channel layer briefly away: try again next period
                logger.exception(
                    "client %s: could not queue the periodic recompute", self.device_id
                )

    async def client_periodic(self, event: dict[str, Any]) -> None:
        if self.grants is None or event.get("generation") != self.generation:
            return
        if not self.dirty.queued:  # a queued recompute covers it
            await self._diff_and_push(self._connectable(self.grants.access))

    def _connectable(self, access: ra.ClientAccess) -> list[ra.AccessResource]:
        assert self.client is not None
        return access.connectable(self._ctx(), self.client.last_seen_version)

    async def _mark_dirty(self, *, reload: bool, broken_policy: str | None = None) -> None:
        self.dirty.reload |= reload
        if broken_policy is not None:
            self.dirty.broken_policies.add(broken_policy)
        if not self.dirty.queued:
            self.dirty.queued = True
            await self._to_self({"type": "client.recompute", "generation": self.generation})

    async def client_recompute(self, event: dict[str, Any]) -> None:
        if self.grants is None or event.get("generation") != self.generation:
            return
        dirty, self.dirty = self.dirty, _Dirty()
        if dirty.reload:
            assert self.client is not None
            client = self.client
            grants = await presence.coalesced(
                ("client_grants", str(client.actor_id)),
                lambda: database_sync_to_async(_load_grants)(client),
            )
            if self.grants is None:  # the channel ended meanwhile
                return
            self._adopt(grants)
        access = self.grants.access
        if dirty.broken_policies:
            # "Delete then insert" (§5.6): first as if the changed policies were gone.
            without = ra.ClientAccess(
                actor_id=access.actor_id,
                resources=access.resources,
                grants={
                    rid: kept
                    for rid, grants in access.grants.items()
                    if (
                        kept := [g for g in grants if str(g.policy_id) not in dirty.broken_policies]
                    )
                },
            )
            await self._diff_and_push(self._connectable(without), deletions_only=True)
        await self._diff_and_push(self._connectable(access))

    async def _diff_and_push(
        self, resources: list[ra.AccessResource], *, deletions_only: bool = False
    ) -> None:
        """Tell the client what changed since the last push: vanished resources and resources
        whose sites changed are deleted first (a site change is a toggle), then new and changed
        ones are sent (§3.1.4)."""
        views = {str(r.id): wire.client_resource_view(r) for r in resources}
        deleted = [
            rid
            for rid, old in self.told.items()
            if rid not in views
            or (not deletions_only and old["gateway_groups"] != views[rid]["gateway_groups"])
        ]
        for rid in deleted:
            del self.told[rid]
            await self.push(wire.RESOURCE_DELETED, wire.resource_deleted(rid))
        if deletions_only:
            return
        for rid, view in views.items():
            if self.told.get(rid) != view:
                await self.push(
                    wire.RESOURCE_CREATED_OR_UPDATED, wire.resource_created_or_updated(view)
                )
        self.told = views

    # ---------------------------------------------------------------- the change feed (§5.6)

    async def handle_change(self, change: Change) -> None:
        if self.grants is None or self.client is None:
            return  # not joined: the join's load reads the current state
        if change.lsn in self._seen_set:
            return
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(change.lsn)
        self._seen_set.add(change.lsn)
        await self._react(change)

    def _newer(self, table: str, row_id: str, lsn: int) -> bool:
        """Per-row ordering for reactions that apply a row image (see the module docstring)."""
        key = (table, row_id)
        if lsn <= self._row_lsn.get(key, 0):
            return False
        self._row_lsn[key] = lsn
        return True

    async def _react(self, change: Change) -> None:
        verdict = self._classify(change)
        if verdict is None:
            return
        kind, value = verdict
        if kind == "config":
            self.config = value
            await self.push(
                wire.CONFIG_CHANGED,
                wire.config_changed(wire.interface_view(self.client, self.config)),
            )
        elif kind == "close":
            await self.close_channel()
        elif kind == "verified":
            self.verified = value
            await self._mark_dirty(reload=False)
        else:  # "reload", value = a policy whose grant changed ("delete, then insert") or None
            await self._mark_dirty(reload=True, broken_policy=value)

    def _classify(self, change: Change) -> tuple[str, Any] | None:
        """The cheap relevance filter: decide from what the socket cached, read nothing.

        ("config", config) | ("close", None) | ("verified", bool) | ("reload", policy id or
        None) | None (nothing to do)."""
        table, op = change.table, change.op
        new = change.new or {}
        if table == "accounts":
            if (
                op == "update"
                and change.changed("config")
                and str(new.get("id")) == str(self.account_id)
                and self._newer(table, str(self.account_id), change.lsn)
            ):
                return "config", new.get("config") or {}
        elif table == "clients" and str(self.device_id) in _image_ids(change, "id"):
            if op == "delete":
                return "close", None
            if change.changed("verified_at") and self._newer(
                table, str(self.device_id), change.lsn
            ):
                return "verified", new.get("verified_at") is not None
        elif table == "actor_group_memberships":
            assert self.client is not None
            if str(self.client.actor_id) in _image_ids(change, "actor_id"):
                return "reload", None
        elif table == "policies" and _image_ids(change, "actor_group_id") & self._group_ids:
            if op != "update" or change.changed("disabled_at"):
                return "reload", None
            if change.changed(*_POLICY_GRANT_FIELDS):
                return "reload", str(new.get("id"))
        elif table == "resources":
            if op != "insert" and _image_ids(change, "id") & self.granted_ids:
                return "reload", None
        elif table == "resource_connections":
            if _image_ids(change, "resource_id") & self.granted_ids:
                return "reload", None
        elif (
            table == "gateway_groups"
            and op == "update"
            and change.changed("name")
            and _image_ids(change, "id") & self.site_ids  # a site of a granted resource
        ):
            return "reload", None
        return None

    @property
    def _group_ids(self) -> frozenset[str]:
        return self.grants.group_ids if self.grants is not None else frozenset()

    # ---------------------------------------------------------------- requests (C→S)

    async def handle_in(self, event: str, payload: Any, message: Message) -> Any:
        handler = self._handlers.get(event)
        if handler is None or not isinstance(payload, dict) or self.grants is None:
            return None
        return await handler(self, payload, message)

    def _authorize(self, resource_id: Any) -> ra.Authorization:
        assert self.grants is not None and self.subject is not None
        return self.grants.access.authorize(
            resource_id,
            ctx=self._ctx(),
            token_expires_at=self.subject.expires_at,
            connectable_ids=self.told.keys(),
        )

    # create_flow (§3.1.6, §5.4)

    async def _create_flow(self, payload: dict[str, Any], message: Message) -> Any:
        if "resource_id" not in payload or "connected_gateway_ids" not in payload:
            return None
        resource_id = payload["resource_id"]
        connected = payload["connected_gateway_ids"]
        connected = connected if isinstance(connected, list) else []
        result = await self._flow_request(resource_id, connected)
        if result.reason is not None:
            await self.push(
                wire.FLOW_CREATION_FAILED,
                wire.flow_creation_failed(resource_id, result.reason, result.violated_properties),
            )
        elif result.gateway is not None and result.message is not None:
            await self.channel_layer.group_send(
                device_group("gateway", result.gateway.pk), result.message
            )
        return NO_REPLY

    async def _flow_request(self, resource_id: Any, connected: list[Any]) -> _FlowResult:
        auth = self._authorize(resource_id)
        if not auth.ok:
            return _FlowResult(reason=auth.status, violated_properties=auth.violated_properties)
        online = await self._online_gateway_ids()
        return await database_sync_to_async(self._create_flow_sync)(auth, online, connected)

    def _create_flow_sync(
        self, auth: ra.Authorization, online: set[str], connected: list[Any]
    ) -> _FlowResult:
        assert self.client is not None
        resource = self._granted_resource(auth)
        if resource is None:
            return _FlowResult(reason=wire.NOT_FOUND)
        gateway = ra.gateway_choose(
            account_id=self.account_id,
            client_id=self.device_id,
            resource=resource,
            client_version=self.client.last_seen_version,
            online_gateway_ids=online,
            connected_gateway_ids=connected,
            lat=self.client.last_seen_remote_ip_location_lat,
            lon=self.client.last_seen_remote_ip_location_lon,
            flow_protocol=True,
        )
        if gateway is None:
            return _FlowResult(reason=wire.OFFLINE)
        try:
            flow = self._authorize_flow_row(auth, gateway)
        except (NotFound, Refused):
            return _FlowResult(reason=wire.NOT_FOUND)
        client, gateway = flow.client, flow.gateway
        view = wire.gateway_resource_view_for(flow.resource, gateway.last_seen_version)
        if view is None:  # pragma: no cover - gateway_choose only keeps gateways that adapt it
            return _FlowResult(reason=wire.OFFLINE)
        psk, ice = crypto.pair_credentials(client, gateway)
        ref = crypto.sign_ref(
            {
                "client_channel": self.channel_name,
                "client_id": str(client.pk),
                "resource_id": str(flow.resource_id),
                # Only this gateway's socket may redeem it (it fills flow_created with its key).
                "gateway_id": str(gateway.pk),
                "preshared_key": psk,
                "client_ice_credentials": ice.client.as_dict(),
                "gateway_ice_credentials": ice.gateway.as_dict(),
            }
        )
        payload = wire.authorize_flow(
            ref=ref,
            resource=view,
            client=client,
            preshared_key=psk,
            ice=ice,
            expires_at=flow.expires_at,
        )
        return _FlowResult(
            gateway=gateway, message=self._gateway_message("authorize_flow", flow, payload)
        )

    def _granted_resource(self, auth: ra.Authorization) -> ra.AccessResource | None:
        """The stored (unadapted) resource an `ok` authorisation is about."""
        assert self.grants is not None
        key = _uuid(auth.resource_id)
        return self.grants.access.resources.get(key) if key is not None else None

    def _authorize_flow_row(self, auth: ra.Authorization, gateway: Gateway) -> Any:
        assert self.client is not None and self.subject is not None
        return flow_authorize(
            subject=self.subject,
            client=self.client.pk,
            resource=auth.resource_id,
            gateway=gateway,
            request_context=self._ctx(),
            decision=auth.decision,
        )

    @staticmethod
    def _gateway_message(kind: str, flow: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": f"gateway.{kind}",
            "client_id": str(flow.client_id),
            "resource_id": str(flow.resource_id),
            "flow_id": str(flow.pk),
            "expires_at": wire.unix(flow.expires_at),
            "payload": payload,
        }

    # ICE candidates (§3.1.7)

    async def _broadcast_ice(self, payload: dict[str, Any], *, invalidate: bool) -> Any:
        if "gateway_ids" not in payload or "candidates" not in payload:
            return None
        gateway_ids, candidates = payload["gateway_ids"], payload["candidates"]
        if not isinstance(gateway_ids, list) or not isinstance(candidates, list) or not gateway_ids:
            return NO_REPLY
        # Only this account's gateways that are online: others have no socket to reach, and a
        # device-chosen string never becomes a channel-layer group name unchecked.
        online = await self._online_gateway_ids()
        message = {
            "type": "gateway.ice_candidates",
            "client_id": str(self.device_id),
            "candidates": candidates,
            "invalidate": invalidate,
        }
        for gateway_id in dict.fromkeys(str(g) for g in gateway_ids):
            if gateway_id in online:
                await self.channel_layer.group_send(device_group("gateway", gateway_id), message)
        return NO_REPLY

    async def _broadcast_ice_candidates(self, payload: dict[str, Any], message: Message) -> Any:
        return await self._broadcast_ice(payload, invalidate=False)

    async def _broadcast_invalidated(self, payload: dict[str, Any], message: Message) -> Any:
        return await self._broadcast_ice(payload, invalidate=True)

    # Legacy flow setup (§3.1.9)

    async def _prepare_connection(self, payload: dict[str, Any], message: Message) -> Any:
        if "resource_id" not in payload:
            return None
        resource_id = payload["resource_id"]
        connected = payload.get("connected_gateway_ids")
        auth = self._authorize(resource_id)
        if not auth.ok:
            return ErrorReply(wire.error_response(auth.status, auth.violated_properties))
        online = await self._online_gateway_ids()
        gateway = await database_sync_to_async(self._legacy_choose)(
            auth, online, connected if isinstance(connected, list) else []
        )
        if gateway is None:
            return ErrorReply(wire.error_response(wire.OFFLINE))
        return wire.prepare_connection_reply(resource_id=resource_id, gateway=gateway)

    def _legacy_choose(
        self, auth: ra.Authorization, online: set[str], connected: list[Any]
    ) -> Gateway | None:
        assert self.client is not None
        resource = self._granted_resource(auth)
        if resource is None:
            return None
        return ra.gateway_choose(
            account_id=self.account_id,
            client_id=self.device_id,
            resource=resource,
            client_version=self.client.last_seen_version,
            online_gateway_ids=online,
            connected_gateway_ids=connected,
            lat=self.client.last_seen_remote_ip_location_lat,
            lon=self.client.last_seen_remote_ip_location_lon,
            flow_protocol=False,
        )

    async def _legacy_flow(
        self,
        payload: dict[str, Any],
        build: Callable[[Any, dict[str, Any]], tuple[str, dict[str, Any]] | None],
    ) -> ErrorReply | tuple[Gateway, dict[str, Any] | None]:
        """Shared checks of `request_connection` / `reuse_connection`: authorised → the named
        gateway exists in one of the resource's sites → it is online; then the flow row and the
        gateway message (None when the resource cannot be adapted to the gateway's version:
        silently not sent)."""
        auth = self._authorize(payload["resource_id"])
        if not auth.ok:
            return ErrorReply(wire.error_response(auth.status, auth.violated_properties))
        online = await self._online_gateway_ids()
        result = await database_sync_to_async(self._legacy_flow_sync)(
            auth, payload["gateway_id"], online, build
        )
        if isinstance(result, str):
            return ErrorReply(wire.error_response(result))
        return result

    def _legacy_flow_sync(
        self,
        auth: ra.Authorization,
        gateway_id: Any,
        online: set[str],
        build: Callable[[Any, dict[str, Any]], tuple[str, dict[str, Any]] | None],
    ) -> str | tuple[Gateway, dict[str, Any] | None]:
        resource = self._granted_resource(auth)
        if resource is None:
            return wire.NOT_FOUND
        gateway, reason = ra.legacy_gateway_check(
            account_id=self.account_id,
            gateway_id=gateway_id,
            resource=resource,
            online_gateway_ids=online,
        )
        if gateway is None:
            return reason or wire.NOT_FOUND
        try:
            flow = self._authorize_flow_row(auth, gateway)
        except (NotFound, Refused):
            return wire.NOT_FOUND
        view = wire.gateway_resource_view_for(flow.resource, flow.gateway.last_seen_version)
        if view is None:
            return flow.gateway, None
        built = build(flow, view)
        if built is None:
            return flow.gateway, None
        kind, gateway_payload = built
        return flow.gateway, self._gateway_message(kind, flow, gateway_payload)

    async def _request_connection(self, payload: dict[str, Any], message: Message) -> Any:
        keys = ("gateway_id", "resource_id", "client_preshared_key", "client_payload")
        if any(key not in payload for key in keys):
            return None

        def build(flow: Any, view: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            ref = crypto.sign_ref(
                {
                    "client_channel": self.channel_name,
                    "client_id": str(flow.client_id),
                    "resource_id": str(flow.resource_id),
                    "gateway_id": str(flow.gateway_id),
                    "client_ref": message.ref,
                    "client_join_ref": message.join_ref,
                }
            )
            return "request_connection", wire.request_connection(
                ref=ref,
                resource=view,
                client=flow.client,
                client_payload=payload["client_payload"],
                client_preshared_key=payload["client_preshared_key"],
                expires_at=flow.expires_at,
            )

        result = await self._legacy_flow(payload, build)
        if isinstance(result, ErrorReply):
            return result
        gateway, gateway_message = result
        if gateway_message is not None:
            await self.channel_layer.group_send(
                device_group("gateway", gateway.pk), gateway_message
            )
        return NO_REPLY  # answered when the gateway sends connection_ready

    async def _reuse_connection(self, payload: dict[str, Any], message: Message) -> Any:
        if any(key not in payload for key in ("gateway_id", "resource_id", "payload")):
            return None

        def build(flow: Any, view: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            ref = crypto.sign_ref(
                {"client_id": str(flow.client_id), "resource_id": str(flow.resource_id)}
            )
            return "allow_access", wire.allow_access(
                ref=ref,
                client=flow.client,
                resource=view,
                expires_at=flow.expires_at,
                payload=payload["payload"],
            )

        result = await self._legacy_flow(payload, build)
        if isinstance(result, ErrorReply):
            return result
        gateway, gateway_message = result
        if gateway_message is not None:
            await self.channel_layer.group_send(
                device_group("gateway", gateway.pk), gateway_message
            )
        return NO_REPLY  # §9 item 10: never answered on success

    _handlers: Mapping[str, Callable[..., Awaitable[Any]]] = {
        "create_flow": _create_flow,
        "broadcast_ice_candidates": _broadcast_ice_candidates,
        "broadcast_invalidated_ice_candidates": _broadcast_invalidated,
        "prepare_connection": _prepare_connection,
        "request_connection": _request_connection,
        "reuse_connection": _reuse_connection,
    }

    # ---------------------------------------------------------------- from gateway sockets

    async def client_flow_authorized(self, event: dict[str, Any]) -> None:
        """The gateway accepted a flow (`flow_authorized`): `flow_created` (§3.1.6)."""
        await self.push(wire.FLOW_CREATED, event["payload"])

    async def client_connection_ready(self, event: dict[str, Any]) -> None:
        """The gateway answered a legacy `request_connection`: reply to the client's frame."""
        if self.joined_topic is None:
            return
        original = Message(
            join_ref=event.get("client_join_ref", self.join_ref),
            ref=event["client_ref"],
            topic=self.joined_topic,
            event="request_connection",
            payload=None,
        )
        await self.reply(original, "ok", event["response"])

    async def client_ice_candidates(self, event: dict[str, Any]) -> None:
        name = wire.INVALIDATE_ICE_CANDIDATES if event.get("invalidate") else wire.ICE_CANDIDATES
        await self.push(
            name, wire.client_ice_candidates(event["gateway_id"], event.get("candidates") or [])
        )
