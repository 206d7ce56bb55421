"""`PhoenixConsumer` over a real WebSocket against a real daphne (protocol.md §1, §2.6).

The server runs `firezone.phoenix.testing_asgi` (a small "client" consumer) in a subprocess; frames
are asserted byte for byte where the wire format matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parent.parent
DAPHNE = [sys.executable, "-m", "daphne", "-b", "127.0.0.1"]
JOIN_OK = '{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":0,"topic":"client"}'
INIT = '{"event":"init","payload":{"hello":"world"},"ref":null,"topic":"client"}'
CLOSE = '{"event":"phx_close","payload":{},"ref":null,"topic":"client"}'


@dataclass
class Server:
    port: int
    log_path: Path

    def url(self, path: str = "/client/websocket", query: str = "token=t") -> str:
        return f"ws://127.0.0.1:{self.port}{path}?{query}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "FIREZONE_TESTING"}
    env.update(DEBUG="true", DJANGO_SETTINGS_MODULE="firezone.settings", PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "daphne.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*DAPHNE, "-p", str(port), "firezone.phoenix.testing_asgi:application"],
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"daphne exited:\n{log_path.read_text()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"daphne did not start:\n{log_path.read_text()}")
                    time.sleep(0.05)
            yield Server(port, log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def send(ws: ClientConnection, frame: object) -> None:
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))


async def recv_raw(ws: ClientConnection) -> str:
    return await asyncio.wait_for(ws.recv(decode=True), 5)


async def recv(ws: ClientConnection) -> Any:
    return json.loads(await recv_raw(ws))


def reply(topic: str, ref: object, status: str, response: dict) -> dict:
    return {
        "event": "phx_reply",
        "payload": {"response": response, "status": status},
        "ref": ref,
        "topic": topic,
    }


async def join(ws: ClientConnection, ref: int = 0) -> None:
    await send(ws, {"topic": "client", "event": "phx_join", "payload": None, "ref": ref})
    assert await recv(ws) == reply("client", ref, "ok", {})
    assert await recv_raw(ws) == INIT


async def heartbeat_roundtrip(ws: ClientConnection, ref: int = 99) -> None:
    """Everything sent before is processed once this returns (one socket is sequential)."""
    await send(ws, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": ref})
    assert await recv(ws) == reply("phoenix", ref, "ok", {})


async def assert_closed(ws: ClientConnection) -> None:
    with pytest.raises(ConnectionClosed):
        await recv_raw(ws)


# ------------------------------------------------------------------ connect rejections (§2.6)


def raw_upgrade(server: Server, query: str, **headers: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request(
        "GET",
        f"/client/websocket?{query}",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "User-Agent": "Ubuntu/22.4.0 headless-client/1.5.4 (x86_64; 6.8.0)",
            **headers,
        },
    )
    return conn.getresponse()


@pytest.mark.parametrize(
    ("query", "headers", "status", "body"),
    [
        ("external_id=x&public_key=k", {}, 401, b"Missing token"),
        ("token=bad", {}, 401, b"Invalid token"),
        (
            "token=params",
            {},
            422,
            b"Invalid or missing connection parameters: "
            b"external_id: can't be blank\npublic_key: can't be blank\n",
        ),
        ("token=t", {"Origin": "https://evil.example.com"}, 403, b""),
        ("token=t&vsn=3.0.0", {}, 403, b""),
        ("token=crash", {}, 500, b"Internal server error"),
    ],
)
def test_upgrade_rejections_are_plain_http_responses(server, query, headers, status, body) -> None:
    response = raw_upgrade(server, query, **headers)
    assert response.status == status
    assert response.read() == body
    assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert response.getheader("Content-Length") == str(len(body))


def test_accepted_upgrade_is_101(server) -> None:
    response = raw_upgrade(server, "token=t")
    assert response.status == 101


async def test_websocket_client_sees_the_401_and_its_body(server) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(server.url(query="external_id=x")):
            pass
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"Missing token"


async def test_origin_of_the_requested_host_is_accepted(server) -> None:
    async with connect(server.url(), origin=Origin(f"http://127.0.0.1:{server.port}")) as ws:
        await heartbeat_roundtrip(ws)


# ------------------------------------------------------------------ V1 framing, join, heartbeat


async def test_join_reply_precedes_init_push(server) -> None:
    async with connect(server.url()) as ws:
        await send(ws, '{"topic":"client","event":"phx_join","payload":null,"ref":0}')
        assert await recv_raw(ws) == JOIN_OK
        assert await recv_raw(ws) == INIT


async def test_pushes_made_during_join_wait_for_the_reply(server) -> None:
    async with connect(server.url()) as ws:
        payload = {"push_during_join": True}
        await send(ws, {"topic": "client", "event": "phx_join", "payload": payload, "ref": 0})
        assert await recv_raw(ws) == JOIN_OK
        assert await recv(ws) == {
            "event": "during_join",
            "payload": {},
            "ref": None,
            "topic": "client",
        }
        assert await recv_raw(ws) == INIT


async def test_heartbeat_before_join_echoes_the_ref_with_its_type(server) -> None:
    async with connect(server.url()) as ws:
        await send(ws, '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":41}')
        assert await recv_raw(ws) == (
            '{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":41,"topic":"phoenix"}'
        )
        await send(ws, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "41"})
        assert (await recv(ws))["ref"] == "41"


async def test_unmatched_topics(server) -> None:
    async with connect(server.url()) as ws:
        flow = {"topic": "client", "event": "create_flow", "payload": {"a": 1}, "ref": 3}
        await send(ws, flow)
        assert await recv(ws) == reply("client", 3, "error", {"reason": "unmatched topic"})
        await send(ws, {"topic": "foo", "event": "phx_join", "payload": {}, "ref": 4})
        assert await recv(ws) == reply("foo", 4, "error", {"reason": "unmatched topic"})
        await send(ws, {"topic": "phoenix", "event": "phx_join", "payload": {}, "ref": 5})
        assert await recv(ws) == reply("phoenix", 5, "error", {"reason": "unmatched topic"})
        await send(ws, {"topic": "phoenix", "event": "other", "payload": {}, "ref": 6})
        assert await recv(ws) == reply("phoenix", 6, "error", {"reason": "unmatched topic"})
        await join(ws, ref=7)
        await send(ws, {"topic": "gateway", "event": "echo", "payload": {}, "ref": 8})
        assert await recv(ws) == reply("gateway", 8, "error", {"reason": "unmatched topic"})


async def test_channel_events(server) -> None:
    async with connect(server.url()) as ws:
        await join(ws)
        await send(ws, {"topic": "client", "event": "echo", "payload": {"x": [1]}, "ref": 1})
        assert await recv(ws) == reply("client", 1, "ok", {"x": [1]})
        await send(ws, {"topic": "client", "event": "unknown_message", "payload": {}, "ref": 5})
        assert await recv_raw(ws) == (
            '{"event":"phx_reply","payload":{"response":{"reason":"unknown_message"},'
            '"status":"error"},"ref":5,"topic":"client"}'
        )
        await send(ws, {"topic": "client", "event": "fail", "payload": {}, "ref": 6})
        assert await recv(ws) == reply("client", 6, "error", {"reason": "not_found"})
        await send(ws, {"topic": "client", "event": "silent", "payload": {}, "ref": 7})
        await heartbeat_roundtrip(ws)  # no reply to `silent` came first
        await send(ws, {"topic": "client", "event": "echo", "payload": {}, "ref": 8})
        assert await recv(ws) == reply("client", 8, "ok", {})


async def test_phx_leave_replies_then_closes_the_channel(server) -> None:
    async with connect(server.url()) as ws:
        await send(ws, {"topic": "client", "event": "phx_leave", "payload": {}, "ref": 1})
        assert await recv(ws) == reply("client", 1, "ok", {})  # not joined: plain ok
        await join(ws, ref=2)
        await send(ws, {"topic": "client", "event": "phx_leave", "payload": {}, "ref": 3})
        assert await recv(ws) == reply("client", 3, "ok", {})
        assert await recv_raw(ws) == CLOSE
        await send(ws, {"topic": "client", "event": "echo", "payload": {}, "ref": 4})
        assert await recv(ws) == reply("client", 4, "error", {"reason": "unmatched topic"})
        await join(ws, ref=5)  # the socket is still usable
        await heartbeat_roundtrip(ws)


async def test_duplicate_join_closes_the_previous_channel(server) -> None:
    async with connect(server.url()) as ws:
        await join(ws, ref=0)
        await send(ws, {"topic": "client", "event": "phx_join", "payload": None, "ref": 1})
        assert await recv_raw(ws) == CLOSE
        assert await recv(ws) == reply("client", 1, "ok", {})
        assert await recv_raw(ws) == INIT


async def test_join_errors_keep_the_socket(server) -> None:
    async with connect(server.url()) as ws:
        await send(
            ws, {"topic": "client", "event": "phx_join", "payload": {"fail": "no"}, "ref": 1}
        )
        assert await recv(ws) == reply("client", 1, "error", {"reason": "no"})
        await send(ws, {"topic": "client", "event": "phx_join", "payload": {"crash": 1}, "ref": 2})
        assert await recv(ws) == reply("client", 2, "error", {"reason": "join crashed"})
        await send(ws, {"topic": "client", "event": "echo", "payload": {}, "ref": 3})
        assert await recv(ws) == reply("client", 3, "error", {"reason": "unmatched topic"})
        await heartbeat_roundtrip(ws)
        await join(ws, ref=4)
    assert "join crashed" in server.log()


async def test_handler_crash_closes_only_that_socket(server) -> None:
    async with connect(server.url()) as ws, connect(server.url()) as other:
        await join(ws)
        await join(other)
        await send(ws, {"topic": "client", "event": "crash", "payload": {}, "ref": 1})
        assert await recv_raw(ws) == CLOSE
        await assert_closed(ws)
        await send(other, {"topic": "client", "event": "echo", "payload": {}, "ref": 1})
        assert await recv(other) == reply("client", 1, "ok", {})
    assert "RuntimeError: handler boom" in server.log()


async def test_channel_layer_handler_crash_closes_only_that_socket(server) -> None:
    async with connect(server.url()) as ws, connect(server.url()) as other:
        await join(ws)
        await send(ws, {"topic": "client", "event": "layer_crash", "payload": {}, "ref": 1})
        assert await recv_raw(ws) == CLOSE
        await assert_closed(ws)
        await heartbeat_roundtrip(other)
    assert "RuntimeError: layer handler boom" in server.log()


async def test_close_channel_pushes_phx_close_then_closes(server) -> None:
    async with connect(server.url()) as ws:
        await join(ws)
        await send(ws, {"topic": "client", "event": "close", "payload": {}, "ref": 1})
        assert await recv_raw(ws) == CLOSE
        await assert_closed(ws)
        assert ws.close_code == 1000


async def test_session_disconnect_closes_without_a_frame(server) -> None:
    async with connect(server.url(query="token=s1")) as ws, connect(server.url()) as other:
        await join(ws)
        await join(other)
        await send(ws, {"topic": "client", "event": "kill_session", "payload": {}, "ref": 1})
        await assert_closed(ws)
        await heartbeat_roundtrip(other)


# ------------------------------------------------------------------ malformed input (§1.8)

MALFORMED = [
    '{"topic":"client","event":"echo","payload":{},"ref":',  # truncated JSON
    "not json at all",
    '[null,1,"client","echo",{}]',  # V2 array on a V1 socket
    "42",
    '{"topic":"client","event":"echo","payload":{}}',  # missing ref
    '{"topic":"client","payload":{},"ref":1}',  # missing event
    '{"topic":7,"event":"echo","payload":{},"ref":1}',  # wrong types
    '{"topic":"client","event":"echo","payload":{},"ref":{"a":1}}',
    '{"topic":"client","event":"echo","payload":{},"ref":true}',
    json.dumps({"topic": "client", "event": "echo", "payload": "x" * 600_000, "ref": 1}),
]


async def test_malformed_frames_are_ignored(server) -> None:
    async with connect(server.url()) as ws, connect(server.url()) as other:
        await join(ws)
        for frame in MALFORMED:
            await send(ws, frame)
        await ws.send(b"\x00binary")
        await heartbeat_roundtrip(ws, ref=1)  # the first frame back: nothing else was answered
        await send(
            ws, {"topic": "client", "event": "echo", "payload": {"still": "joined"}, "ref": 2}
        )
        assert await recv(ws) == reply("client", 2, "ok", {"still": "joined"})
        await join(other)
    log = server.log()
    assert "ignoring a malformed frame: not JSON" in log
    assert "ignoring a malformed frame: V1 frame must be a JSON object" in log
    assert "ignoring a malformed frame: missing key(s): ref" in log
    assert "ignoring a frame of 600" in log
    assert "ignoring a binary frame" in log


async def test_payloads_the_channel_layer_cannot_carry_get_an_error_reply(server) -> None:
    """An integer outside the 64-bit range (or a lone surrogate) anywhere in a payload never
    reaches the handler, whose channel-layer send would crash on it (issue 17): an error reply
    with its ref, and the socket and channel stay."""
    async with connect(server.url()) as ws:
        await join(ws)
        for ref, payload in enumerate(['{"n":[18446744073709551616]}', '{"s":"\\ud800"}'], 1):
            await send(
                ws, f'{{"topic":"client","event":"layer_crash","payload":{payload},"ref":{ref}}}'
            )
            assert await recv(ws) == reply("client", ref, "error", {"reason": "unknown_message"})
        big = 2**64 - 1
        await send(ws, {"topic": "client", "event": "echo", "payload": {"n": big}, "ref": 3})
        assert await recv(ws) == reply("client", 3, "ok", {"n": big})
    assert "refusing a layer_crash payload: integer out of the 64-bit range" in server.log()


async def test_messages_over_daphnes_limit_close_only_that_socket(server) -> None:
    # daphne (autobahn) fails the connection on messages over 1 MiB (1009, or a dropped TCP
    # connection while the client is still sending) before the application sees them.
    async with connect(server.url()) as ws, connect(server.url()) as other:
        await join(ws)
        # The reset may come while the client is still writing: then `send` itself fails.
        with contextlib.suppress(ConnectionClosed):
            await send(ws, {"topic": "client", "event": "echo", "payload": "x" * 2**21, "ref": 1})
        await assert_closed(ws)
        assert ws.close_code in (1006, 1009)
        await join(other)


# ------------------------------------------------------------------ V2 framing


async def test_v2_array_framing(server) -> None:
    async with connect(server.url(query="token=t&vsn=2.0.0")) as ws:
        await send(ws, [None, 1, "phoenix", "heartbeat", {}])
        assert await recv(ws) == [None, 1, "phoenix", "phx_reply", {"status": "ok", "response": {}}]
        await send(ws, ["3", "3", "client", "phx_join", {}])
        assert await recv(ws) == ["3", "3", "client", "phx_reply", {"status": "ok", "response": {}}]
        assert await recv(ws) == ["3", None, "client", "init", {"hello": "world"}]
        await send(ws, '{"topic":"client","event":"echo","payload":{},"ref":4}')  # V1: ignored
        await send(ws, ["3", "5", "client", "nope", {}])
        assert await recv(ws) == [
            "3",
            "5",
            "client",
            "phx_reply",
            {"status": "error", "response": {"reason": "unknown_message"}},
        ]
        await send(ws, ["3", "6", "client", "phx_leave", {}])
        assert await recv(ws) == ["3", "6", "client", "phx_reply", {"status": "ok", "response": {}}]
        assert await recv(ws) == ["3", "3", "client", "phx_close", {}]


# ------------------------------------------------------------------ idle timeout


async def test_idle_socket_is_closed(server) -> None:
    async with connect(server.url("/idle/websocket")) as ws:
        started = time.monotonic()
        await assert_closed(ws)
        assert 0.4 < time.monotonic() - started < 3


async def test_inbound_frames_keep_the_socket_open(server) -> None:
    async with connect(server.url("/idle/websocket")) as ws:
        for ref in range(6):  # 1.2 s in all, idle timeout 0.5 s
            await asyncio.sleep(0.2)
            await heartbeat_roundtrip(ws, ref=ref)
        await assert_closed(ws)
