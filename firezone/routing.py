"""WebSocket routes of the three device kinds (protocol.md §1.1).

A plain HTTP request on these paths (no upgrade) is answered 400 with an empty body by the HTTP
side (`firezone.urls`).
"""

from __future__ import annotations

from django.urls import path

from firezone.web.live import PortalLiveConsumer
from gateways.consumers.client import ClientConsumer
from gateways.consumers.gateway import GatewayConsumer
from gateways.consumers.relay import RelayConsumer

websocket_urlpatterns = [
    path("client/websocket", ClientConsumer.as_asgi()),
    path("gateway/websocket", GatewayConsumer.as_asgi()),
    path("relay/websocket", RelayConsumer.as_asgi()),
    # The admin pages' live updates (portal.md §7); authenticated by the session cookie.
    path("live", PortalLiveConsumer.as_asgi()),
]
