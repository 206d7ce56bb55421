"""The WebSocket handshake's deadlines, on a real server started as `make run` and the image start
it (`python -m firezone.webserver` with DAPHNE_SOCKET_OPTIONS: 10 s for the request head, 10 s
for the application to accept the upgrade)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from firezone.devservices import DAPHNE_SOCKET_OPTIONS
from tests.live import LiveServer, run_daphne, server_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def _option(name: str) -> float:
    options = DAPHNE_SOCKET_OPTIONS.split()
    return float(options[options.index(name) + 1])


HEAD_TIMEOUT = _option("--request-head-timeout")
ACCEPT_TIMEOUT = _option("--websocket_connect_timeout")
# daphne looks at unaccepted sockets every 2 s.
CHECK_INTERVAL = 2.0

UPGRADE_HEAD = (
    b"GET /client/websocket?vsn=2.0.0 HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


async def never_accepts(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI application that takes the WebSocket connect event and never answers it."""
    await receive()
    await asyncio.Event().wait()


def _dribble(server: LiveServer, head: bytes, every: float) -> tuple[float, bytes]:
    """Send `head` a byte every `every` seconds, then read; (seconds until the server closed the
    connection or answered, what it answered)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        started = time.monotonic()
        try:
            for byte in head:
                sock.sendall(bytes([byte]))
                time.sleep(every)
            answer = sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
        return time.monotonic() - started, answer


def test_a_request_head_sent_a_byte_at_a_time_is_cut_at_the_deadline(
    live_daphne: LiveServer,
) -> None:
    # Twisted alone resets its 60 s idle timer on every byte: this client would stay forever.
    elapsed, answer = _dribble(live_daphne, UPGRADE_HEAD, every=1.0)
    assert answer == b""
    assert HEAD_TIMEOUT - 0.5 <= elapsed <= HEAD_TIMEOUT + 2
    # The server answered others meanwhile and still does.
    status, _, _ = live_daphne.http("GET", "/healthz")
    assert status == 200


def test_a_slow_head_completed_within_the_deadline_is_served(live_daphne: LiveServer) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    elapsed, answer = _dribble(live_daphne, head, every=(HEAD_TIMEOUT / 2) / len(head))
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert elapsed < HEAD_TIMEOUT


def test_a_head_that_never_completes_is_cut_at_the_deadline(live_daphne: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", live_daphne.port), timeout=60) as sock:
        started = time.monotonic()
        sock.sendall(UPGRADE_HEAD[:40])
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:  # aborted: no FIN, a reset
            answer = b""
        assert answer == b""
        assert HEAD_TIMEOUT - 0.5 <= time.monotonic() - started <= HEAD_TIMEOUT + 2


async def test_an_upgrade_the_application_never_accepts_is_refused_at_the_deadline() -> None:
    with run_daphne(server_env(), "tests.test_webserver:never_accepts") as server:
        started = time.monotonic()
        # autobahn's opening-handshake timer (the same option) usually drops the connection
        # first, without an answer; daphne's check answers 403.
        with pytest.raises((InvalidMessage, InvalidStatus)) as refused:
            async with connect(server.url("/client/websocket"), open_timeout=60):
                pass
        elapsed = time.monotonic() - started
    if isinstance(refused.value, InvalidStatus):
        assert refused.value.response.status_code == 403
    assert ACCEPT_TIMEOUT - 1 <= elapsed <= ACCEPT_TIMEOUT + CHECK_INTERVAL + 1.5
