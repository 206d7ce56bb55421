"""The floor of `bench/sockets.py`: a bare Channels consumer on `client/websocket`.

It accepts every connect and answers a Phoenix V1 `phx_join` on topic "client" and a heartbeat
on topic "phoenix" with an empty ok reply; nothing else (no database, no authentication, no
groups, no `init`). It runs with the project's settings, so it has the same channel layer (Redis)
that every Channels consumer of the real server gets. The bench starts it with daphne exactly like
the real server (same socket options) and measures it in the same run:

    python -m firezone.webserver <options> bench.bare_asgi:application
"""

from __future__ import annotations

import json
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firezone.settings")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

# The (topic, event) pairs answered with `{"status":"ok","response":{}}`.
ANSWERED = {("client", "phx_join"), ("phoenix", "heartbeat")}


class BareConsumer(AsyncWebsocketConsumer):
    """Accept, answer joins and heartbeats, ignore everything else."""

    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame: Any = json.loads(text_data if text_data is not None else bytes_data or b"")
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        topic = frame.get("topic")
        if (topic, frame.get("event")) not in ANSWERED:
            return
        reply = {
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {}},
            "ref": frame.get("ref"),
            "topic": topic,
        }
        await self.send(text_data=json.dumps(reply, separators=(",", ":")))


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("client/websocket", BareConsumer.as_asgi())])}
)
