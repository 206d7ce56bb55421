"""The gateway socket, topic `"gateway"` — phase-1 stub (protocol.md §3.2 comes in phase 2).

Authenticates with the site token and upserts the gateway exactly as the real socket will
(§2.4), joins the account change group and `gateway.<id>`, and answers a join with ok.
"""

from __future__ import annotations

from typing import Any

from accounts.models import Token
from firezone.phoenix.consumer import JoinError
from firezone.phoenix.framing import Message
from gateways.connect import ConnectContext, authenticate_gateway
from gateways.consumers.base import DeviceConsumer
from gateways.models import Gateway, Site


class GatewayConsumer(DeviceConsumer):
    topic_name = "gateway"

    token: Token | None = None
    site: Site | None = None
    gateway: Gateway | None = None

    def authenticate_device(self, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, ...]:
        self.token, self.site, self.gateway = authenticate_gateway(params, ctx)
        return self.token.pk, self.gateway.account_id, self.gateway.pk

    async def join(self, topic: str, payload: Any, message: Message) -> dict[str, Any] | JoinError:
        return {}
