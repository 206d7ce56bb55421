"""The gateway socket, topic `"gateway"` (protocol.md §3.2, §4.4, §5.5, §5.6, §5.8, §6.3).

Join (payload ignored) → ok, then `after_join` (§3.2.1): the flow cache is loaded from the
database, a 60 s prune is scheduled, the gateway is marked online (`account_gateways:<account>`
→ `{online_at}`, `group_gateways:<site>` → `{token_id}`), relays are selected and watched
(`RelayWatch`, §4.4), and `init` is pushed with one authorisation per cached pair.

Per-socket state is the **flow cache**: `(client_id, resource_id) → {flow_id: expires_at}` (unix
seconds), from the database at join and from every `authorize_flow` / `request_connection` /
`allow_access` pushed since. It decides what a flow deletion means to the gateway (§5.5):
unknown flow → nothing; other flows left → `access_authorization_expiry_updated`; last flow →
re-authorised through `resources.access.flow_reauthorize` (→ expiry update) or `reject_access`.

Messages from other sockets (channel layer, group `gateway.<id>`, sent by the client socket):
`gateway.authorize_flow`, `gateway.request_connection`,
`gateway.allow_access`, `gateway.ice_candidates`, `gateway.reject_access` (the §5.8 admin/test
hook, `reject_access_send` / `manage.py reject_access`). Answers go to the client socket's
channel (`client.flow_authorized`, `client.connection_ready`, from the signed ref) or to every
socket of a client (`client.ice_candidates`, group `client.<id>`).

Change propagation (§5.6), from the account's hub (`gateways.hub`: the process applies each
committed transaction once and hands the socket its rows in order, `hub_changes`; the socket
works through them one batch at a time in a task of its own, so a re-authorisation's database
work never holds up the hub): flow deletions of this gateway (§5.5);
a resource's address/type/ip_stack change → `reject_access` for its cached pairs (dropped from
the cache, so the flow deletions that follow in the same transaction are not re-authorised:
Elixir would re-authorise them and send an expiry update for an authorisation the gateway just
dropped, §9 item 17); filters change only → `resource_updated` (adapted to this gateway's
version, skipped when it cannot be); account slug change → `init` again; own gateway row deleted
→ `phx_close` and the socket is closed. The hub delivers each change once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Final

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from accounts.models import Account, Token
from accounts.request import ConnectContext
from firezone.db import db_call
from firezone.phoenix.consumer import NO_REPLY, ErrorReply, JoinError
from firezone.phoenix.framing import Message
from gateways import presence, wire
from gateways.connect import authenticate_gateway
from gateways.consumers.base import DeviceConsumer, device_group
from gateways.crypto import IceCredentials, IceCredentialsPair, verify_ref
from gateways.hub import hub as hubs
from gateways.models import Gateway, Site
from gateways.relay_selection import RelayWatch, relay_watch_start
from gateways.turn import gateway_credentials_expiry, relay_views
from resources.access import flow_reauthorize
from resources.models import Flow

logger = logging.getLogger(__name__)

Pair = tuple[str, str]  # (client_id, resource_id)

INVALID_REF: Final = "invalid_ref"
# Fields whose change makes a resource another destination (§5.6): authorisations are revoked.
ADDRESSABILITY_FIELDS: Final = ("address", "type", "ip_stack")
ICE_EVENTS: Final = ("broadcast_ice_candidates", "broadcast_invalidated_ice_candidates")


# --- the §5.8 hook ----------------------------------------------------------------------------


def reject_access_message(client_id: Any, resource_id: Any) -> dict[str, Any]:
    return {
        "type": "gateway.reject_access",
        "client_id": str(client_id),
        "resource_id": str(resource_id),
    }


async def reject_access_send(*, gateway_id: Any, client_id: Any, resource_id: Any) -> None:
    """Make the gateway's sockets push `reject_access {client_id, resource_id}` (§5.8): the
    admin/test hook that desynchronises a gateway from a client on purpose. A no-op when the
    gateway is not connected."""
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(
        device_group("gateway", gateway_id), reject_access_message(client_id, resource_id)
    )


def reject_access_send_sync(*, gateway_id: Any, client_id: Any, resource_id: Any) -> None:
    async_to_sync(reject_access_send)(
        gateway_id=gateway_id, client_id=client_id, resource_id=resource_id
    )


# --- small helpers ----------------------------------------------------------------------------


def _uuid_str(value: Any) -> str | None:
    """A canonical UUID string, or None (also keeps channel-layer group names valid)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _ice_pair(client: Any, gateway: Any) -> IceCredentialsPair | None:
    def one(value: Any) -> IceCredentials | None:
        if not isinstance(value, Mapping):
            return None
        username, password = value.get("username"), value.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return None
        return IceCredentials(username=username, password=password)

    c, g = one(client), one(gateway)
    return IceCredentialsPair(client=c, gateway=g) if c and g else None


def _load_flow_cache(gateway_id: Any, account_id: Any) -> dict[Pair, dict[str, int]]:
    """Sync, at join (§3.2.1 step 1): this gateway's unexpired flows."""
    rows = Flow.objects.filter(
        account_id=account_id, gateway_id=gateway_id, expires_at__gt=timezone.now()
    ).values_list("client_id", "resource_id", "id", "expires_at")
    cache: dict[Pair, dict[str, int]] = {}
    for client_id, resource_id, flow_id, expires_at in rows:
        cache.setdefault((str(client_id), str(resource_id)), {})[str(flow_id)] = wire.unix(
            expires_at
        )
    return cache


def _reauthorize(deleted_flow: Mapping[str, Any]) -> tuple[str, int] | None:
    """Sync (§5.5): a replacement for the last deleted flow of a pair, as (flow id, expiry), or
    None. A disabled account re-authorises nothing: its flows were deleted on purpose."""
    account_id = deleted_flow.get("account_id")
    if (
        account_id is None
        or Account.objects.filter(pk=account_id, disabled_at__isnull=False).exists()
    ):
        return None
    flow = flow_reauthorize(deleted_flow)
    if flow is None:
        return None
    return str(flow.pk), wire.unix(flow.expires_at)


class GatewayConsumer(DeviceConsumer):
    topic_name = "gateway"
    # Seconds between flow-cache prunes (§5.7).
    prune_interval: ClassVar[float] = 60.0

    token: Token | None = None
    site: Site | None = None
    gateway: Gateway | None = None
    hub: hubs.AccountHub | None = None
    flows: dict[Pair, dict[str, int]]
    account_slug = ""
    _inbox: list[list[dict[str, Any]]] | None = None
    _worker: asyncio.Task | None = None

    def authenticate_device(self, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, ...]:
        self.token, self.site, self.gateway = authenticate_gateway(params, ctx)
        return self.token.pk, self.gateway.account_id, self.gateway.pk

    # ---------------------------------------------------------------- join / leave

    async def join(self, topic: str, payload: Any, message: Message) -> dict[str, Any] | JoinError:
        return {}

    async def after_join(self) -> None:
        assert self.gateway is not None
        self.flows, self._inbox = {}, []
        hub = await hubs.acquire(self.account_id)
        if self.joined_topic is None:  # the channel ended while the hub loaded
            await hubs.release(hub)
            return
        # Attached before the flow cache is read: a flow deleted meanwhile is queued, not lost.
        self.hub = hub
        hub.gateways.add(self)
        # 1. flow cache from the database, the slug from the hub
        self.flows = await db_call(_load_flow_cache, self.device_id, self.account_id)
        assert hub.model is not None
        self.account_slug = hub.model.slug
        # 2. prune expired cache entries every minute
        self.spawn(self._prune_loop())
        # 3. online (gateway.<id> was joined at connect)
        await self._track_online()
        # 5. relays: watch account-wide presence first so a relay joining meanwhile is seen
        lat, lon = self.device_location()
        self.watch = RelayWatch(self.account_id)
        await self.relay_actions(self.watch.begin())
        selection, actions = await relay_watch_start(self.watch, lat=lat, lon=lon)
        await self.relay_actions(actions)
        # 6. init, then whatever changed meanwhile
        await self._push_init(selection)
        self._work_inbox()

    async def leave(self, reason: str) -> None:
        hub, self.hub = self.hub, None
        self.flows, self._inbox = {}, None
        if hub is not None:
            hub.gateways.discard(self)
            await hubs.release(hub)
        await super().leave(reason)

    def device_location(self) -> tuple[float | None, float | None]:
        assert self.gateway is not None
        return (
            self.gateway.last_seen_remote_ip_location_lat,
            self.gateway.last_seen_remote_ip_location_lon,
        )

    async def _track_online(self) -> None:
        if self.presence is None:
            self.presence = presence.PresenceTracker(self.channel_name)
        assert self.gateway is not None
        key = str(self.device_id)
        await self.presence.track_many(
            [
                (
                    presence.account_gateways_topic(self.account_id),
                    key,
                    {"online_at": int(time.time())},
                ),
                (
                    presence.group_gateways_topic(self.gateway.group_id),
                    key,
                    {"token_id": str(self.session_token_id)},
                ),
            ]
        )

    @property
    def joined(self) -> bool:
        return self.joined_topic is not None and self.watch is not None

    # ---------------------------------------------------------------- init / relays

    def relay_views(self, relays: Iterable[Any]) -> list[dict[str, Any]]:
        assert self.gateway is not None
        return relay_views(relays, self.gateway.public_key, gateway_credentials_expiry())

    async def _push_init(self, relays: Iterable[Any]) -> None:
        assert self.gateway is not None
        now = time.time()
        authorizations = []
        for (client_id, resource_id), flows in self.flows.items():
            live = [e for e in flows.values() if e > now]
            if live:
                authorizations.append((client_id, resource_id, max(live)))
        await self.push(
            wire.INIT,
            wire.gateway_init(
                gateway=self.gateway,
                account_slug=self.account_slug,
                relays=self.relay_views(relays),
                authorizations=authorizations,
            ),
        )

    # ---------------------------------------------------------------- background work

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.prune_interval)
            self.prune()

    def prune(self, now: float | None = None) -> None:
        """Drop expired flows from the cache, and pairs left without any (no messages: the
        gateway drops authorisations at their expiry by itself)."""
        now = time.time() if now is None else now
        for pair, flows in list(self.flows.items()):
            kept = {f: e for f, e in flows.items() if e > now}
            if kept:
                self.flows[pair] = kept
            else:
                del self.flows[pair]

    # ---------------------------------------------------------------- flow cache

    def _cache(self, client_id: Any, resource_id: Any, flow_id: Any, expires_at: Any) -> None:
        expiry = wire.unix(expires_at) if isinstance(expires_at, int | float | datetime) else None
        if client_id is None or resource_id is None or flow_id is None or expiry is None:
            logger.warning("gateway %s: not caching an incomplete flow", self.device_id)
            return
        self.flows.setdefault((str(client_id), str(resource_id)), {})[str(flow_id)] = expiry

    async def _flow_deleted(self, image: Mapping[str, Any]) -> None:
        """§5.5 for one deleted flow row of this gateway."""
        pair = (str(image.get("client_id")), str(image.get("resource_id")))
        flow_id = str(image.get("id"))
        flows = self.flows.get(pair)
        if not flows or flow_id not in flows:
            return
        del flows[flow_id]
        now = time.time()
        remaining = {f: e for f, e in flows.items() if e > now}
        if remaining:
            self.flows[pair] = remaining
            await self.push(
                wire.ACCESS_AUTHORIZATION_EXPIRY_UPDATED,
                wire.access_authorization_expiry_updated(*pair, max(remaining.values())),
            )
            return
        replacement = await db_call(_reauthorize, image)
        if replacement is None:
            self.flows.pop(pair, None)
            await self.push(wire.REJECT_ACCESS, wire.reject_access(*pair))
            return
        new_id, expires_at = replacement
        self.flows[pair] = {new_id: expires_at}
        await self.push(
            wire.ACCESS_AUTHORIZATION_EXPIRY_UPDATED,
            wire.access_authorization_expiry_updated(*pair, expires_at),
        )

    async def _reject_pairs(self, pairs: Iterable[Pair]) -> None:
        for pair in pairs:
            self.flows.pop(pair, None)
            await self.push(wire.REJECT_ACCESS, wire.reject_access(*pair))

    # ---------------------------------------------------------------- change propagation (§5.6)

    def hub_changes(self, changes: list[dict[str, Any]]) -> None:
        """From the hub: one committed transaction's rows, in order (queued, worked through in
        a task of this socket's own so database work never holds the hub up)."""
        if self._inbox is None:
            return
        self._inbox.append(changes)
        if self.joined:
            self._work_inbox()

    def hub_reloaded(self) -> None:
        """The hub may have missed changes (a stream gap): re-read this gateway's flows and
        revoke or update what differs from the cache."""
        if self._inbox is not None:
            self._inbox.append([{"table": "_reload", "op": "reload"}])
            if self.joined:
                self._work_inbox()

    async def _resync_flows(self) -> None:
        fresh = await db_call(_load_flow_cache, self.device_id, self.account_id)
        now = time.time()
        for pair, flows in list(self.flows.items()):
            live = [e for e in flows.values() if e > now]
            if pair not in fresh:
                if live:
                    await self.push(wire.REJECT_ACCESS, wire.reject_access(*pair))
                continue
            if live and max(fresh[pair].values()) != max(live):
                await self.push(
                    wire.ACCESS_AUTHORIZATION_EXPIRY_UPDATED,
                    wire.access_authorization_expiry_updated(*pair, max(fresh[pair].values())),
                )
        self.flows = fresh

    def _work_inbox(self) -> None:
        if self._inbox and (self._worker is None or self._worker.done()):
            self._worker = asyncio.get_running_loop().create_task(self._drain_inbox())
            if self._tasks is None:
                self._tasks = set()
            self._tasks.add(self._worker)
            self._worker.add_done_callback(self._tasks.discard)

    async def _drain_inbox(self) -> None:
        while self._inbox:
            batch = self._inbox.pop(0)
            for change in batch:
                try:
                    await self.handle_hub_change(change)
                except Exception:
                    logger.exception("gateway %s could not apply a change", self.device_id)
                if self._inbox is None:  # the channel ended
                    return

    async def handle_hub_change(self, change: Mapping[str, Any]) -> None:
        if not self.joined:
            return
        table, op = change["table"], change["op"]
        old, new = change.get("old") or {}, change.get("new") or {}
        me = str(self.device_id)
        if table == "_reload":
            await self._resync_flows()
        elif table == "flows" and op == "delete":
            if str(old.get("gateway_id")) == me:
                await self._flow_deleted(old)
        elif table == "resources" and op == "update":
            await self._resource_updated(old, new)
        elif table == "accounts" and op == "update":
            if str(new.get("id")) == str(self.account_id) and old.get("slug") != new.get("slug"):
                self.account_slug = new.get("slug") or ""
                await self._push_init(self.watch.selected if self.watch else ())
        elif table == "gateways" and op == "delete" and str(old.get("id")) == me:
            await self.close_channel()

    async def _resource_updated(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        resource_id = str(new.get("id"))
        if any(old.get(f) != new.get(f) for f in ADDRESSABILITY_FIELDS):
            await self._reject_pairs([p for p in self.flows if p[1] == resource_id])
        elif old.get("filters") != new.get("filters"):
            assert self.gateway is not None
            view = wire.gateway_resource_view_for(new, self.gateway.last_seen_version)
            if view is not None:
                await self.push(wire.RESOURCE_UPDATED, wire.resource_updated(view))

    # ---------------------------------------------------------------- messages from other sockets

    async def _push_flow_message(self, event: str, message: dict[str, Any]) -> None:
        if not self.joined:
            return  # nobody online to serve it: the sender saw no presence
        self._cache(
            message.get("client_id"),
            message.get("resource_id"),
            message.get("flow_id"),
            message.get("expires_at"),
        )
        await self.push(event, message["payload"])

    async def gateway_authorize_flow(self, message: dict[str, Any]) -> None:
        await self._push_flow_message(wire.AUTHORIZE_FLOW, message)

    async def gateway_request_connection(self, message: dict[str, Any]) -> None:
        await self._push_flow_message(wire.REQUEST_CONNECTION, message)

    async def gateway_allow_access(self, message: dict[str, Any]) -> None:
        await self._push_flow_message(wire.ALLOW_ACCESS, message)

    async def gateway_ice_candidates(self, message: dict[str, Any]) -> None:
        if not self.joined:
            return
        event = wire.INVALIDATE_ICE_CANDIDATES if message.get("invalidate") else wire.ICE_CANDIDATES
        await self.push(
            event, wire.gateway_ice_candidates(message["client_id"], message["candidates"])
        )

    async def gateway_reject_access(self, message: dict[str, Any]) -> None:
        if not self.joined:
            return
        await self._reject_pairs([(str(message["client_id"]), str(message["resource_id"]))])

    # ---------------------------------------------------------------- inbound events

    async def handle_in(self, event: str, payload: Any, message: Message) -> Any:
        if not isinstance(payload, dict):
            return None
        if event == "flow_authorized" and "ref" in payload:
            return await self._flow_authorized(payload["ref"])
        if event == "connection_ready" and {"ref", "gateway_payload"} <= payload.keys():
            return await self._connection_ready(payload["ref"], payload["gateway_payload"])
        if event in ICE_EVENTS and {"client_ids", "candidates"} <= payload.keys():
            invalidate = event == "broadcast_invalidated_ice_candidates"
            return await self._broadcast_ice(
                payload["client_ids"], payload["candidates"], invalidate
            )
        return None

    def _verified(self, ref: Any, *required: str) -> dict[str, Any] | None:
        data = verify_ref(ref)
        if data is None or not all(k in data for k in ("gateway_id", *required)):
            return None
        if not isinstance(data["client_channel"], str) or not data["client_channel"]:
            return None
        # A ref is only valid on the socket of the gateway it was minted for: one without a
        # gateway id could be redeemed by any gateway, another account's included.
        if str(data["gateway_id"]) != str(self.device_id):
            return None
        return data

    async def _flow_authorized(self, ref: Any) -> Any:
        """§3.2.5: valid ref → ok and `flow_created` to the client socket that asked."""
        data = self._verified(
            ref,
            "client_channel",
            "resource_id",
            "preshared_key",
            "client_ice_credentials",
            "gateway_ice_credentials",
        )
        ice = (
            _ice_pair(data["client_ice_credentials"], data["gateway_ice_credentials"])
            if data
            else None
        )
        if data is None or ice is None or not isinstance(data["preshared_key"], str):
            return ErrorReply.reason(INVALID_REF)
        payload = wire.flow_created(
            resource_id=data["resource_id"],
            gateway=self.gateway,
            preshared_key=data["preshared_key"],
            ice=ice,
        )
        await self.send_to_channel(
            data["client_channel"], {"type": "client.flow_authorized", "payload": payload}
        )
        return {}

    async def _connection_ready(self, ref: Any, gateway_payload: Any) -> Any:
        """§3.2.7 (legacy): valid ref → ok, and the client's `request_connection` is answered."""
        data = self._verified(ref, "client_channel", "resource_id", "client_ref")
        if data is None:
            return ErrorReply.reason(INVALID_REF)
        assert self.gateway is not None
        response = wire.request_connection_reply(
            resource_id=data["resource_id"],
            gateway_public_key=self.gateway.public_key,
            gateway_payload=gateway_payload,
        )
        await self.send_to_channel(
            data["client_channel"],
            {
                "type": "client.connection_ready",
                "client_ref": data["client_ref"],
                "client_join_ref": data.get("client_join_ref"),
                "response": response,
            },
        )
        return {}

    async def _broadcast_ice(self, client_ids: Any, candidates: Any, invalidate: bool) -> Any:
        """§3.2.9: forward the candidates, unmodified, to every socket of each named client.

        Only clients of this gateway's account that are online (one presence read for the
        batch): another account's client id is treated like an unknown one, ignored, and a
        device-chosen string never becomes a channel-layer group name unchecked."""
        if not isinstance(client_ids, list) or not isinstance(candidates, list):
            return None
        named = list(dict.fromkeys(filter(None, map(_uuid_str, client_ids))))
        if not named:
            return NO_REPLY
        online = await presence.list_presences(presence.account_clients_topic(self.account_id))
        message = {
            "type": "client.ice_candidates",
            "gateway_id": str(self.device_id),
            "candidates": candidates,
            "invalidate": invalidate,
        }
        for client_id in named:
            if client_id in online:
                await self.send_to_device("client", client_id, message)
        return NO_REPLY
