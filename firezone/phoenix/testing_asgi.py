"""Test-only ASGI application: small `PhoenixConsumer`s served by a real daphne in the tests.

    daphne -p PORT firezone.phoenix.testing_asgi:application

Routes `/client/websocket` (topic "client", idle timeout 307 s) and `/idle/websocket` (same
consumer, 0.5 s idle timeout). Connect: no `token` → 401 "Missing token", `token=bad` → 401
"Invalid token", `token=params` → 422, `token=crash` → 500; any other token is the session id.
Events: `echo` replies ok with its payload, `silent` gets no reply, `fail` an error reply, `crash`
raises, `close` closes the channel, `kill_session` disconnects the session through the channel
layer (in-memory here, so the test server needs no Redis), `layer_crash` makes a channel-layer
handler raise.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firezone.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from firezone.changes import session_group  # noqa: E402
from firezone.phoenix.consumer import (  # noqa: E402
    NO_REPLY,
    ConnectRejected,
    ErrorReply,
    JoinError,
    PhoenixConsumer,
)
from firezone.phoenix.framing import Message  # noqa: E402

TEST_LAYER = "phoenix-test"
settings.CHANNEL_LAYERS = {
    **settings.CHANNEL_LAYERS,
    TEST_LAYER: {"BACKEND": "channels.layers.InMemoryChannelLayer"},
}


class EchoConsumer(PhoenixConsumer):
    topic_name = "client"
    idle_timeout: ClassVar[float] = 307
    channel_layer_alias = TEST_LAYER

    async def authenticate(self, scope: dict[str, Any]) -> None:
        token = self.params.get("token")
        if token is None:
            raise ConnectRejected(401, "Missing token")
        if token == "bad":
            raise ConnectRejected(401, "Invalid token")
        if token == "params":
            raise ConnectRejected(
                422,
                "Invalid or missing connection parameters: "
                "external_id: can't be blank\npublic_key: can't be blank\n",
            )
        if token == "crash":
            raise RuntimeError("boom")
        self.session_token_id = token

    async def join(self, topic: str, payload: Any, message: Message) -> dict | JoinError:
        payload = payload or {}
        if "fail" in payload:
            return JoinError(payload["fail"])
        if "crash" in payload:
            raise RuntimeError("join boom")
        if "push_during_join" in payload:
            await self.push("during_join", {})
        return {}

    async def after_join(self) -> None:
        await self.push("init", {"hello": "world"})

    async def handle_in(self, event: str, payload: Any, message: Message) -> Any:
        if event == "echo":
            return payload
        if event == "silent":
            return NO_REPLY
        if event == "fail":
            return ErrorReply.reason("not_found")
        if event == "crash":
            raise RuntimeError("handler boom")
        if event == "close":
            await self.close_channel()
            return NO_REPLY
        if event == "layer_crash":
            await self.channel_layer.send(self.channel_name, {"type": "test.crash"})
            return NO_REPLY
        if event == "kill_session":
            group = session_group(self.session_token_id)
            await self.channel_layer.group_send(group, {"type": "session.disconnect"})
            return NO_REPLY
        return None

    async def test_crash(self, event: dict[str, Any]) -> None:
        raise RuntimeError("layer handler boom")


class IdleConsumer(EchoConsumer):
    idle_timeout = 0.5


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path("client/websocket", EchoConsumer.as_asgi()),
                path("idle/websocket", IdleConsumer.as_asgi()),
            ]
        ),
    }
)
