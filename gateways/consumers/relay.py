"""The relay socket, topic `"relay"` (protocol.md §3.3, §4.1, §6.4).

Join with `{"stamp_secret": <string>}` → ok, `init {}`, then the relay is online: presence in
`group_relays:<group>` (`{token_id}`), `account_relays:<account>` or `global_relays`
(`{online_at, secret}`; clients and gateways derive TURN credentials from the secret) and
`relays:<relay>` (`{}`). Any other join payload is a crashed join; any event is `unknown_message`.

Deleting the relay or its group pushes `disconnect {"reason": "token_expired"}` and closes the
socket (connlib's relay then exits). The socket listens on `relay.<id>` and `relay_group.<id>`
(published by `firezone.changes` for every relay / relay-group change, account or global) rather
than on the whole account's changes. Deleting a group also hard-deletes its tokens, whose
session disconnect may arrive first: that path checks whether the relay row still exists and,
if not, sends the same `disconnect` frame before closing. A token deletion alone closes the
socket without a frame (§6.4).
"""

from __future__ import annotations

import time
from typing import Any

from accounts.request import ConnectContext
from firezone.changes import Change, own_group
from firezone.db import db_call
from firezone.phoenix.consumer import JoinError
from firezone.phoenix.framing import Message
from gateways.connect import authenticate_relay
from gateways.consumers.base import DeviceConsumer
from gateways.models import Relay
from gateways.wire import disconnect_token_expired, relay_init


def relay_presence_topics(*, relay_id: Any, group_id: Any, account_id: Any) -> tuple[str, str, str]:
    """(group topic, account-or-global topic, per-relay topic) of a relay (§4.1)."""
    shared = f"account_relays:{account_id}" if account_id is not None else "global_relays"
    return f"group_relays:{group_id}", shared, f"relays:{relay_id}"


class RelayConsumer(DeviceConsumer):
    topic_name = "relay"

    group_id: Any = None
    stamp_secret: str | None = None
    _disconnecting = False

    def authenticate_device(self, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, ...]:
        token, group, relay = authenticate_relay(params, ctx)
        self.group_id = group.pk
        return token.pk, relay.account_id, relay.pk

    def extra_groups(self) -> list[str]:
        # The device group `relay.<id>` is the relay's own change group; add its group's.
        group = own_group("relay_groups", self.group_id)
        return [group] if group else []

    async def join(self, topic: str, payload: Any, message: Message) -> dict[str, Any] | JoinError:
        secret = payload.get("stamp_secret") if isinstance(payload, dict) else None
        if not isinstance(secret, str):
            # Elixir's join only matches a map with `stamp_secret`: anything else crashes it.
            return JoinError("join crashed")
        self.stamp_secret = secret
        return {}

    async def after_join(self) -> None:
        await self.push("init", relay_init())
        group_topic, shared_topic, relay_topic = relay_presence_topics(
            relay_id=self.device_id, group_id=self.group_id, account_id=self.account_id
        )
        online_at = int(time.time())
        await self.track_many(
            [
                (group_topic, self.device_id, {"token_id": str(self.session_token_id)}),
                (
                    shared_topic,
                    self.device_id,
                    {"online_at": online_at, "secret": self.stamp_secret},
                ),
                (relay_topic, self.device_id, {}),
            ]
        )

    async def handle_in(self, event: str, payload: Any, message: Message) -> Any:
        return None  # relays send nothing but heartbeats: unknown_message

    # ---------------------------------------------------------------- disconnects (§6.4)

    async def handle_change(self, change: Change) -> None:
        if change.op != "delete":
            return
        row_id = str((change.old or {}).get("id"))
        if (change.table == "relays" and row_id == str(self.device_id)) or (
            change.table == "relay_groups" and row_id == str(self.group_id)
        ):
            await self.disconnect_relay()

    async def session_disconnect(self, event: dict[str, Any]) -> None:
        if not await db_call(self._relay_exists):
            await self.disconnect_relay()  # its group went with the token
            return
        await super().session_disconnect(event)

    def _relay_exists(self) -> bool:
        return Relay.objects.filter(pk=self.device_id).exists()

    async def disconnect_relay(self) -> None:
        """`disconnect token_expired`, then close the socket (the relay process exits)."""
        if self._disconnecting:
            return
        self._disconnecting = True
        await self.untrack_all()
        await self.push("disconnect", disconnect_token_expired())
        await self._close_socket()
