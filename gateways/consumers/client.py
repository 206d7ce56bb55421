"""The client socket, topic `"client"` (protocol.md §3.1, §4.4, §5): protocol glue around the
account's access hub (`gateways.hub`).

Join → ok, then `after_join` (§3.1.1): the socket attaches to its account's hub (loaded by the
first socket of the account in this process) and takes its view from it (shared with every
socket of the same groups, version and condition outcome); relays are selected and watched
(`RelayWatch`); the client is tracked in `account_clients:<account>` (`{online_at}`) and
`actor_clients:<actor>` (`{token_id}`); the client's flows for resources it can no longer reach
are deleted; `init` is pushed.

Changes (§5.6) reach the socket through the hub, from memory: `hub_refresh` (its access may
have changed: push the diff between what it was told and its current view — deletions first, a
policy whose grant changed is "deleted, then inserted"), `hub_config_changed` (`config_changed`),
`hub_client_changes` (its own client row: verified or un-verified → recompute; deleted →
`phx_close` and the socket is closed). The periodic recompute for time windows (§5.7) is the
hub's too. The socket itself keeps only its identity, its connection context and a reference to
the view it was last told.

Requests (C→S): `create_flow` (§3.1.6/§5.4; answered by a push, never a reply): authorised in
memory by the hub (policy, membership and expiry), then one gateway query and one flow insert on
the device database pool; `broadcast_(invalidated_)ice_candidates` (§3.1.7); the legacy
`prepare_connection`, `request_connection`, `reuse_connection` (§3.1.9,
`gateways.consumers.client_legacy`). Messages from gateway sockets (channel layer):
`client.flow_authorized` → `flow_created`, `client.ice_candidates` → `(invalidate_)
ice_candidates`. Messages to gateways go to the group `gateway.<id>`.

Decisions:

* Tokens without expiry (protocol.md §9 item 12): accepted. Relay credentials then expire
  7 days after each push (`init`, `relays_presence`; `turn.client_credentials_expiry`), like
  the gateways' rolling 90 days. Flows of such sessions are capped at
  `resources.services.flows.MAX_FLOW_LIFETIME` (7 days).
* The own client deleted → `close_channel()`: `phx_close`, then the WebSocket is closed.
  connlib reacts to `phx_close` by reconnecting anyway (§1.9); closing it here means a socket
  whose client row is gone is never re-joined.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.utils import timezone

from accounts.auth import Subject
from accounts.request import ConnectContext
from firezone import metrics
from firezone.db import db_call
from firezone.errors import NotFound, Refused
from firezone.phoenix.consumer import NO_REPLY, ErrorReply, JoinError
from firezone.phoenix.framing import Message, _dumps
from gateways import crypto, presence, turn, wire
from gateways.connect import authenticate_client
from gateways.consumers.base import DeviceConsumer, device_group
from gateways.consumers.client_legacy import LegacyFlows
from gateways.hub import hub as hubs
from gateways.hub.model import ClientView, GrantSet
from gateways.models import Client, Gateway
from gateways.relay_selection import RelayCandidate, RelayWatch, relay_watch_start
from resources import access as ra
from resources.conditions import RequestContext
from resources.services.flows import flow_insert_decided, flows_delete_stale_for_client

EMPTY_VIEW: Final = ClientView({})


@dataclass(slots=True)
class _FlowResult:
    """Outcome of the database part of a flow request: a failure reason, or what to send."""

    reason: str | None = None
    violated_properties: tuple[str, ...] = ()
    gateway: Gateway | None = None
    message: dict[str, Any] | None = None


class ClientConsumer(LegacyFlows, DeviceConsumer):
    topic_name = "client"

    subject: Subject | None = None
    client: Client | None = None
    hub: hubs.AccountHub | None = None
    told: ClientView = EMPTY_VIEW
    verified = False
    _grantset: GrantSet | None = None
    _initialized = False
    _client_lsn = 0

    def authenticate_device(self, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, ...]:
        self.subject, self.client = authenticate_client(params, ctx)
        self.verified = self.client.verified_at is not None
        return self.subject.token_id, self.client.account_id, self.client.pk

    @property
    def hub_actor_id(self) -> uuid.UUID:
        assert self.client is not None
        return self.client.actor_id

    @property
    def hub_client_id(self) -> str:
        return str(self.device_id)

    # ---------------------------------------------------------------- join (§3.1.1)

    async def join(self, topic: str, payload: Any, message: Message) -> dict[str, Any] | JoinError:
        return {}

    async def after_join(self) -> None:
        assert self.client is not None and self.subject is not None
        hub = await hubs.acquire(self.account_id)
        if self.joined_topic is None:  # the channel ended while the hub loaded
            await hubs.release(hub)
            return
        self.hub, self._initialized = hub, False
        # Attached with its view in one step (no await between): no change can slip through.
        self._grantset, self.told = hub.view_for(self.client.actor_id, self._ctx(), self._version)
        hub.attach_client(self)

        lat, lon = self.device_location()
        self.watch = RelayWatch(self.account_id)
        await self.relay_actions(self.watch.begin())
        selection, actions = await relay_watch_start(self.watch, lat=lat, lon=lon)
        await self.relay_actions(actions)
        await self.track_many(
            [
                (presence.account_clients_topic(self.account_id), self.device_id, {}),
                (
                    presence.actor_clients_topic(self.client.actor_id),
                    self.device_id,
                    {"token_id": str(self.session_token_id)},
                ),
            ]
        )
        await db_call(
            flows_delete_stale_for_client,
            client=self.client,
            connectable_resource_ids=list(self.told.resources),
        )
        assert hub.model is not None
        await self._push_init(selection, hub.model.config)
        self._initialized = True
        # Whatever changed while relays and presence were set up.
        await self.hub_refresh(set())

    async def _push_init(self, relays: Iterable[RelayCandidate], config: dict[str, Any]) -> None:
        """`init`, its resource list encoded once per view (shared by every socket told it)."""
        assert self.client is not None
        relay_views = self.relay_views(relays)
        interface = wire.interface_view(self.client, config)
        payload = wire.client_init(
            resources=self.told.resources.values(), relays=relay_views, interface=interface
        )
        rest = _dumps({"relays": relay_views, "interface": interface})
        text = (
            f'{{"event":"{wire.INIT}","payload":{{"resources":{self.told.resources_json()},'
            f'{rest[1:]},"ref":null,"topic":"{self.topic_name}"}}'
        )
        await self.push_encoded(wire.INIT, payload, text)

    async def leave(self, reason: str) -> None:
        hub, self.hub = self.hub, None
        self._initialized, self.told, self._grantset = False, EMPTY_VIEW, None
        if hub is not None:
            hub.detach_client(self)
            await hubs.release(hub)
        await super().leave(reason)

    # ---------------------------------------------------------------- context

    @property
    def _version(self) -> str | None:
        return self.client.last_seen_version if self.client is not None else None

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

    def device_location(self) -> tuple[float | None, float | None]:
        assert self.client is not None
        return (
            self.client.last_seen_remote_ip_location_lat,
            self.client.last_seen_remote_ip_location_lon,
        )

    def relay_views(self, relays: Iterable[RelayCandidate]) -> list[dict[str, Any]]:
        assert self.client is not None and self.subject is not None
        expires_at = turn.client_credentials_expiry(self.subject.expires_at)
        return turn.relay_views(relays, self.client.public_key, expires_at)

    async def _online_gateway_ids(self) -> set[str]:
        return set(await presence.list_presences(presence.account_gateways_topic(self.account_id)))

    # ---------------------------------------------------------------- from the hub (§5.6, §5.7)

    def hub_time_bound(self) -> bool:
        return self._grantset is not None and self._grantset.time_bound

    async def hub_refresh(self, broken_policies: set[str]) -> None:
        hub = self.hub
        if hub is None or not self._initialized or self.client is None:
            return
        self._grantset, view, frames = hub.refresh(
            self.told, self.client.actor_id, self._ctx(), self._version, broken_policies
        )
        self.told = view
        await self._send_frames(frames)

    async def _send_frames(self, frames: Iterable[hubs.Frame]) -> None:
        for event, payload, text in frames:
            await self.push_encoded(event, payload, text)

    async def hub_config_changed(self) -> None:
        if self.hub is None or self.hub.model is None or not self._initialized:
            return
        interface = wire.interface_view(self.client, self.hub.model.config)
        await self.push(wire.CONFIG_CHANGED, wire.config_changed(interface))

    async def hub_client_changes(self, changes: list[dict[str, Any]]) -> None:
        """Changes of this socket's own client row (§5.6)."""
        for change in changes:
            lsn = int(change.get("lsn") or 0)
            if lsn <= self._client_lsn:
                continue  # an older image arriving late
            self._client_lsn = lsn
            if change["op"] == "delete":
                await self.close_channel()
                return
            new, old = change.get("new") or {}, change.get("old") or {}
            if new.get("verified_at") != old.get("verified_at"):
                self.verified = new.get("verified_at") is not None
                await self.hub_refresh(set())

    # ---------------------------------------------------------------- requests (C→S)

    async def handle_in(self, event: str, payload: Any, message: Message) -> Any:
        handler = self._handlers.get(event)
        if handler is None or not isinstance(payload, dict) or not self._initialized:
            return None
        return await handler(self, payload, message)

    async def outage_reply(self, event: str, payload: Any, message: Message) -> Any:
        """A flow request while PostgreSQL or Redis is down: `offline` (no gateway can be
        reached now; connlib tries again on its next packet), the socket stays up."""
        if event == "create_flow":
            await self.push(
                wire.FLOW_CREATION_FAILED,
                wire.flow_creation_failed(payload.get("resource_id"), wire.OFFLINE),
            )
            return NO_REPLY
        if event in LegacyFlows.legacy_handlers:
            return ErrorReply(wire.error_response(wire.OFFLINE))
        return await super().outage_reply(event, payload, message)

    def _authorize(self, resource_id: Any) -> ra.Authorization:
        assert self.hub is not None and self.hub.model is not None
        assert self.client is not None and self.subject is not None
        return self.hub.model.authorize(
            self.client.actor_id,
            resource_id,
            ctx=self._ctx(),
            token_expires_at=self.subject.expires_at,
            connectable_ids=self.told.resources.keys(),
        )

    def _granted_resource(self, auth: ra.Authorization) -> ra.AccessResource | None:
        """The stored (unadapted) resource an `ok` authorisation is about."""
        assert self.hub is not None and self.hub.model is not None and self.client is not None
        return self.hub.model.granted_resource(self.client.actor_id, auth.resource_id)

    # create_flow (§3.1.6, §5.4)

    async def _create_flow(self, payload: dict[str, Any], message: Message) -> Any:
        if "resource_id" not in payload or "connected_gateway_ids" not in payload:
            return None
        started = time.perf_counter()
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
        metrics.CREATE_FLOW_SECONDS.observe(time.perf_counter() - started)
        return NO_REPLY

    async def _flow_request(self, resource_id: Any, connected: list[Any]) -> _FlowResult:
        auth = self._authorize(resource_id)
        if not auth.ok:
            return _FlowResult(reason=auth.status, violated_properties=auth.violated_properties)
        resource = self._granted_resource(auth)
        if resource is None:
            return _FlowResult(reason=wire.NOT_FOUND)
        online = await self._online_gateway_ids()
        return await db_call(self._create_flow_sync, auth, resource, online, connected)

    def _create_flow_sync(
        self,
        auth: ra.Authorization,
        resource: ra.AccessResource,
        online: set[str],
        connected: list[Any],
    ) -> _FlowResult:
        """On the device database pool: one gateway query and one flow insert (with its
        change-log row)."""
        assert self.client is not None and self.subject is not None
        client = self.client
        gateway = ra.gateway_choose(
            account_id=self.account_id,
            client_id=self.device_id,
            resource=resource,
            client_version=client.last_seen_version,
            online_gateway_ids=online,
            connected_gateway_ids=connected,
            lat=client.last_seen_remote_ip_location_lat,
            lon=client.last_seen_remote_ip_location_lon,
            flow_protocol=True,
        )
        if gateway is None:
            return _FlowResult(reason=wire.OFFLINE)
        view = wire.gateway_resource_view_for(resource, gateway.last_seen_version)
        if view is None:  # pragma: no cover - gateway_choose only keeps gateways that adapt it
            return _FlowResult(reason=wire.OFFLINE)
        try:
            flow = self._insert_flow(auth, gateway)
        except (NotFound, Refused):
            return _FlowResult(reason=wire.NOT_FOUND)
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

    def _insert_flow(self, auth: ra.Authorization, gateway: Gateway) -> Any:
        assert self.client is not None and self.subject is not None
        assert auth.expires_at is not None
        return flow_insert_decided(
            subject=self.subject,
            client=self.client,
            gateway=gateway,
            resource_id=auth.resource_id,
            policy_id=auth.policy_id,
            membership_id=auth.membership_id,
            expires_at=auth.expires_at,
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

    _handlers: Mapping[str, Callable[..., Awaitable[Any]]] = {
        "create_flow": _create_flow,
        "broadcast_ice_candidates": _broadcast_ice_candidates,
        "broadcast_invalidated_ice_candidates": _broadcast_invalidated,
        **LegacyFlows.legacy_handlers,
    }

    # ---------------------------------------------------------------- from gateway sockets

    async def client_flow_authorized(self, event: dict[str, Any]) -> None:
        """The gateway accepted a flow (`flow_authorized`): `flow_created` (§3.1.6)."""
        await self.push(wire.FLOW_CREATED, event["payload"])

    async def client_ice_candidates(self, event: dict[str, Any]) -> None:
        name = wire.INVALIDATE_ICE_CANDIDATES if event.get("invalidate") else wire.ICE_CANDIDATES
        await self.push(
            name, wire.client_ice_candidates(event["gateway_id"], event.get("candidates") or [])
        )
