"""Legacy flow setup of clients older than 1.4 (protocol.md §3.1.9): `prepare_connection`,
`request_connection`, `reuse_connection`, and the gateway's `connection_ready` answer.

A mixin of `ClientConsumer`: it uses the consumer's in-memory authorisation (`_authorize`,
`_granted_resource`), its flow insert (`_insert_flow`) and gateway message shape
(`_gateway_message`); only the gateway choice and the flow row touch the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from firezone.db import db_call
from firezone.errors import NotFound, Refused
from firezone.phoenix.consumer import NO_REPLY, ErrorReply
from firezone.phoenix.framing import Message
from gateways import crypto, wire
from gateways.consumers.base import DeviceConsumer, device_group
from gateways.models import Client, Gateway
from resources import access as ra

Build = Callable[[Any, dict[str, Any]], tuple[str, dict[str, Any]] | None]


class LegacyFlows(DeviceConsumer):
    """`prepare_connection` / `request_connection` / `reuse_connection` handlers."""

    if TYPE_CHECKING:  # `ClientConsumer`'s, used here
        client: Client | None

        def _authorize(self, resource_id: Any) -> ra.Authorization: ...
        def _granted_resource(self, auth: ra.Authorization) -> ra.AccessResource | None: ...
        async def _online_gateway_ids(self) -> set[str]: ...
        def _insert_flow(self, auth: ra.Authorization, gateway: Gateway) -> Any: ...
        @staticmethod
        def _gateway_message(kind: str, flow: Any, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def _prepare_connection(self, payload: dict[str, Any], message: Message) -> Any:
        if "resource_id" not in payload:
            return None
        resource_id = payload["resource_id"]
        connected = payload.get("connected_gateway_ids")
        auth = self._authorize(resource_id)
        if not auth.ok:
            return ErrorReply(wire.error_response(auth.status, auth.violated_properties))
        online = await self._online_gateway_ids()
        gateway = await db_call(
            self._legacy_choose, auth, online, connected if isinstance(connected, list) else []
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
        self, payload: dict[str, Any], build: Build
    ) -> ErrorReply | tuple[Gateway, dict[str, Any] | None]:
        """Shared checks of `request_connection` / `reuse_connection`: authorised → the named
        gateway exists in one of the resource's sites → it is online; then the flow row and the
        gateway message (None when the resource cannot be adapted to the gateway's version:
        silently not sent)."""
        auth = self._authorize(payload["resource_id"])
        if not auth.ok:
            return ErrorReply(wire.error_response(auth.status, auth.violated_properties))
        online = await self._online_gateway_ids()
        result = await db_call(self._legacy_flow_sync, auth, payload["gateway_id"], online, build)
        if isinstance(result, str):
            return ErrorReply(wire.error_response(result))
        return result

    def _legacy_flow_sync(
        self,
        auth: ra.Authorization,
        gateway_id: Any,
        online: set[str],
        build: Build,
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
            flow = self._insert_flow(auth, gateway)
        except (NotFound, Refused):
            return wire.NOT_FOUND
        view = wire.gateway_resource_view_for(resource, gateway.last_seen_version)
        if view is None:
            return gateway, None
        built = build(flow, view)
        if built is None:
            return gateway, None
        kind, gateway_payload = built
        return gateway, self._gateway_message(kind, flow, gateway_payload)

    async def _request_connection(self, payload: dict[str, Any], message: Message) -> Any:
        keys = ("gateway_id", "resource_id", "client_preshared_key", "client_payload")
        if any(key not in payload for key in keys):
            return None
        assert self.client is not None
        client = self.client

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
                client=client,
                client_payload=payload["client_payload"],
                client_preshared_key=payload["client_preshared_key"],
                expires_at=flow.expires_at,
            )

        return await self._send_legacy(await self._legacy_flow(payload, build))

    async def _reuse_connection(self, payload: dict[str, Any], message: Message) -> Any:
        if any(key not in payload for key in ("gateway_id", "resource_id", "payload")):
            return None
        assert self.client is not None
        client = self.client

        def build(flow: Any, view: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            ref = crypto.sign_ref(
                {"client_id": str(flow.client_id), "resource_id": str(flow.resource_id)}
            )
            return "allow_access", wire.allow_access(
                ref=ref,
                client=client,
                resource=view,
                expires_at=flow.expires_at,
                payload=payload["payload"],
            )

        # §9 item 10: never answered on success.
        return await self._send_legacy(await self._legacy_flow(payload, build))

    async def _send_legacy(self, result: ErrorReply | tuple[Gateway, dict[str, Any] | None]) -> Any:
        if isinstance(result, ErrorReply):
            return result
        gateway, gateway_message = result
        if gateway_message is not None:
            await self.channel_layer.group_send(
                device_group("gateway", gateway.pk), gateway_message
            )
        return NO_REPLY  # request_connection is answered when the gateway sends connection_ready

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

    legacy_handlers = {
        "prepare_connection": _prepare_connection,
        "request_connection": _request_connection,
        "reuse_connection": _reuse_connection,
    }
