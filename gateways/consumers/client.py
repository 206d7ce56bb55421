"""The client socket, topic `"client"` — phase-1 stub (protocol.md §3.1 comes in phase 2).

Authenticates and upserts the client exactly as the real socket will (§2.3), joins the account
change group and `client.<id>`, and answers a join with ok. No `init` yet.
"""

from __future__ import annotations

from typing import Any

from accounts.auth import Subject
from firezone.phoenix.consumer import JoinError
from firezone.phoenix.framing import Message
from gateways.connect import ConnectContext, authenticate_client
from gateways.consumers.base import DeviceConsumer
from gateways.models import Client


class ClientConsumer(DeviceConsumer):
    topic_name = "client"

    subject: Subject | None = None
    client: Client | None = None

    def authenticate_device(self, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, ...]:
        self.subject, self.client = authenticate_client(params, ctx)
        return self.subject.token_id, self.client.account_id, self.client.pk

    async def join(self, topic: str, payload: Any, message: Message) -> dict[str, Any] | JoinError:
        return {}
