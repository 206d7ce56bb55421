"""Refusing a WebSocket upgrade with an HTTP status and a plain-text body (protocol.md §2.6).

Devices must see e.g. `401 Missing token` or `422 Invalid or missing connection parameters: …`
as a plain HTTP response to the upgrade request; every 4xx is fatal for connlib (§1.10).

ASGI has a standard way to say this: the "WebSocket Denial Response" extension — the application
sends `websocket.http.response.start` / `websocket.http.response.body` instead of
`websocket.accept`, when the server advertises `scope["extensions"]["websocket.http.response"]`.

Finding for daphne 4.2.3 (read in .venv/…/daphne, autobahn 26.11.1):

* daphne does NOT support the extension. `daphne/ws_protocol.py` `WebSocketProtocol.handle_reply`
  only knows `websocket.accept`, `websocket.close` and `websocket.send`, and silently ignores any
  other message type (so sending the extension messages would leave the client hanging until the
  20 s connect timeout). The scope it builds in `onConnect` has no `extensions` key.
* The only refusal daphne can express is `websocket.close` before accept: `serverReject()` errbacks
  the handshake with `autobahn ConnectionDeny(code=403, reason="Access denied")`, which autobahn
  turns into `HTTP/1.1 403 Access denied` with NO body (`failHandshake` →
  `sendHttpErrorResponse` writes only the status line). No other status, no body.
* An ASGI wrapper around the websocket route cannot help: by the time an ASGI app runs, daphne's
  HTTP layer (`http_protocol.WebRequest.process`) has already handed the TCP transport to the
  autobahn WebSocket protocol, and the app's only channel back is `handle_reply` above.
* daphne builds its factory as `WebSocketFactory(self, …)` and twisted instantiates
  `factory.protocol` for every upgrade, looked up when the connection arrives.

Decision: keep daphne and the standard ASGI extension. `install()` points
`daphne.ws_protocol.WebSocketFactory.protocol` at `DenialResponseWebSocketProtocol`, a small
subclass (no daphne file is edited) that advertises the extension in the scope and implements it:
it buffers the start/body messages, then fails the pending handshake through daphne's normal
`serverReject()` path, and autobahn's `failHandshake` is overridden to write our full HTTP
response (status line, `Content-Type`, `Content-Length`, body) instead of the bare status line.
daphne's bookkeeping (disconnect, logging, connect timeout) is unchanged. `install()` runs when
the consumer module is imported, i.e. while daphne imports the ASGI application and before it
accepts any connection. The application side (`deny`) only relies on the scope advertisement, so
it also works unchanged on servers with native support (uvicorn, hypercorn), and falls back to
daphne's bare 403 where the extension is not advertised. If a future daphne supports the extension
natively, drop `install()`.
"""

from __future__ import annotations

import logging
import pprint
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any

from daphne import ws_protocol
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

DENIAL_EXTENSION = "websocket.http.response"
START = "websocket.http.response.start"
BODY = "websocket.http.response.body"

Send = Callable[[dict[str, Any]], Awaitable[None]]


class ConnectRejected(Exception):
    """Raised by a socket's connect step: refuse the upgrade with `status` and a plain-text body."""

    # Seconds to wait before answering (set by a throttled connect, `gateways.connect`).
    delay: float = 0.0

    def __init__(self, status: int, body: str = "") -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def supports_denial_response(scope: dict[str, Any]) -> bool:
    return DENIAL_EXTENSION in (scope.get("extensions") or {})


async def deny(send: Send, scope: dict[str, Any], status: int, body: str = "") -> None:
    """Answer a not-yet-accepted WebSocket with `status` and a plain-text body."""
    if not supports_denial_response(scope):
        # Closest the server can do: daphne turns a close before accept into a bare 403.
        logger.warning("server lacks %s: refusing with a bare 403 instead of %s", START, status)
        await send({"type": "websocket.close"})
        return
    data = body.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
    ]
    await send({"type": START, "status": status, "headers": headers})
    await send({"type": BODY, "body": data, "more_body": False})


def websocket_only(request: HttpRequest) -> HttpResponse:
    """Plain HTTP (no upgrade) on a socket path: 400 with an empty body, as Phoenix answers."""
    return HttpResponse(status=400)


def _http_response(status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {status} {phrase}".encode()]
    names = set()
    for name, value in headers:
        if any(c in name + value for c in (b"\r", b"\n")):  # no header injection via the app
            raise ValueError("header names and values must not contain CR or LF")
        names.add(name.lower())
        lines.append(name + b": " + value)
    if b"content-length" not in names:
        lines.append(b"content-length: %d" % len(body))
    lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _AdvertisingServer:
    """Stand-in for daphne's Server seen by one protocol: adds the extension to the scope."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        scope.setdefault("extensions", {})[DENIAL_EXTENSION] = {}
        return self._server.create_application(protocol, scope)


class DenialResponseWebSocketProtocol(ws_protocol.WebSocketProtocol):
    """daphne's WebSocket protocol plus the ASGI WebSocket Denial Response extension."""

    _denial: dict[str, Any] | None = None
    _denial_response: bytes | None = None

    # daphne's onConnect does `self.server = self.factory.server_class` and then builds the scope
    # inline; wrapping the server on assignment is the narrowest hook into that scope.
    @property
    def server(self) -> Any:
        return self.__dict__["_fz_server"]

    @server.setter
    def server(self, value: Any) -> None:
        if not isinstance(value, _AdvertisingServer):
            value = _AdvertisingServer(value)
        self.__dict__["_fz_server"] = value

    def handle_reply(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == START:
            if self.state != self.STATE_CONNECTING or self._denial is not None:
                raise ValueError(f"{START} is only valid once, before the handshake completes")
            self._denial = {
                "status": int(message["status"]),
                "headers": [(bytes(k), bytes(v)) for k, v in message.get("headers", ())],
                "body": bytearray(),
            }
        elif kind == BODY:
            if self._denial is None or self._denial_response is not None:
                raise ValueError(f"{BODY} must follow {START}")
            self._denial["body"] += message.get("body", b"")
            if not message.get("more_body", False):
                denial = self._denial
                self._denial_response = _http_response(
                    denial["status"], denial["headers"], bytes(denial["body"])
                )
                if self.state == self.STATE_CONNECTING and hasattr(self, "handshake_deferred"):
                    # daphne's own rejection path; failHandshake below writes our response.
                    self.serverReject()
        else:
            super().handle_reply(message)

    def failHandshake(self, reason: str, code: int = 400, responseHeaders: Any = None) -> None:
        if self._denial_response is None:
            super().failHandshake(reason, code, responseHeaders)
            return
        self.wasNotCleanReason = reason
        self.sendData(self._denial_response)
        self.dropConnection(abort=False)


class _LazyPformat:
    """`pprint.pformat(obj)` computed only if the message is ever formatted."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __str__(self) -> str:
        return pprint.pformat(self.obj)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _lazy_autobahn_debug() -> None:
    """autobahn pretty-prints its whole configuration for a debug log line on EVERY new
    WebSocket (`WebSocketProtocol._connectionMade`), logged or not: 8 % of a device connect's CPU
    here. Make that argument lazy; the log line is unchanged when debug logging is on."""
    from autobahn.websocket import protocol as autobahn_protocol

    if getattr(autobahn_protocol, "pformat", None) is pprint.pformat:
        autobahn_protocol.pformat = _LazyPformat  # type: ignore[assignment]  # a lazy stand-in


def install() -> bool:
    """Make daphne build `DenialResponseWebSocketProtocol` for new upgrades (idempotent)."""
    _lazy_autobahn_debug()
    current = ws_protocol.WebSocketFactory.protocol
    if issubclass(current, DenialResponseWebSocketProtocol):
        return True
    if current is not ws_protocol.WebSocketProtocol:
        logger.warning("daphne's WebSocket protocol is already %r: not replacing it", current)
        return False
    ws_protocol.WebSocketFactory.protocol = DenialResponseWebSocketProtocol
    return True
