"""WebSocket routes of the three device kinds."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path


class NotYetAvailableConsumer(AsyncWebsocketConsumer):
    """Placeholder until the device sockets land: refuse with a clear close (4000 + reason)."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=4000, reason="device sockets are not available yet")


websocket_urlpatterns = [
    path("client/websocket", NotYetAvailableConsumer.as_asgi()),
    path("gateway/websocket", NotYetAvailableConsumer.as_asgi()),
    path("relay/websocket", NotYetAvailableConsumer.as_asgi()),
]
