"""Hostile connect parameters and request headers for the three device sockets (issue 17),
against a live daphne: every query parameter of protocol.md §2.3-§2.5 (and `vsn`, an unknown
one, a repeated one) and the request metadata headers of §2.2 (User-Agent, X-Forwarded-For, the
geo headers) get NUL bytes, 10 kB strings, lone surrogates, invalid percent-encodings, numbers
and the like. Every upgrade is answered 101 or a 4xx of §2.6 (401 / 422 / 403), never a 5xx, and
the server logs no traceback.

The upgrade request is written by hand on a plain TCP socket, so headers a WebSocket client
library would refuse to send (a NUL in User-Agent) reach the server too. `FUZZ_CONNECTS`
(default 300) requests per socket kind.
"""

from __future__ import annotations

import os
import socket
import string
from typing import Any
from urllib.parse import quote

import hypothesis.strategies as st
import pytest
from django.core.cache import cache

from gateways.tests.sockets import (
    CLIENT_PATH,
    GATEWAY_PATH,
    GATEWAY_UA,
    RELAY_PATH,
    RELAY_UA,
    World,
    make_world,
)
from tests import hostile
from tests.hostile import HOSTILE_STRINGS, NUL, draw
from tests.live import CONNLIB_UA, LiveServer, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONNECTS = int(os.environ.get("FUZZ_CONNECTS", "300"))
PARAMS = {
    CLIENT_PATH: [
        "token",
        "external_id",
        "name",
        "public_key",
        "device_serial",
        "device_uuid",
        "identifier_for_vendor",
        "firebase_installation_id",
    ],
    GATEWAY_PATH: ["token", "external_id", "name", "public_key"],
    RELAY_PATH: ["token", "ipv4", "ipv6", "port", "name"],
}
UAS = {CLIENT_PATH: CONNLIB_UA, GATEWAY_PATH: GATEWAY_UA, RELAY_PATH: RELAY_UA}
# 400 "upgrade failed" (§2.6) is daphne's own answer to a header with a NUL or an Origin it
# cannot parse, before the application sees the request.
ALLOWED = {101, 400, 401, 403, 422}
# Twisted drops a request line longer than this without an answer (its HTTP line limit).
MAX_LINE = 16_384

# Values for a query parameter: hostile text, numbers, raw percent-encodings that are not UTF-8.
texts = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from([*string.printable, NUL, "é"]), max_size=300),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["1" * 5_000, "65536", "0", "-1", "3478.0", " 3478 ", "1e3", "0x10"]),
    st.sampled_from(["::1", "256.1.1.1", "1.2.3.4/8", "fe80::1%eth0", "[::1]", "1.2.3"]),
)
raw_values = st.sampled_from(["%ff", "%00", "%", "%zz", "%c3%28", "%ed%a0%80"])  # not UTF-8
headers = st.one_of(
    st.sampled_from(HOSTILE_STRINGS[:-1]),
    st.text(alphabet=st.sampled_from([*string.printable[:94], " ", NUL, "\x7f", "é"]), max_size=60),
)


def _encode(value: Any) -> str:
    if isinstance(value, tuple):  # a raw (already percent-encoded) value
        return value[0]
    return quote(value, safe="", errors="surrogatepass")


@st.composite
def requests(draw_: Any, path: str, valid: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A query string (each parameter valid, hostile, raw or missing) and request headers."""
    pairs: list[tuple[str, Any]] = []
    for name in PARAMS[path]:
        choice = draw_(st.integers(0, 7))
        if choice <= 3 and name in valid:
            pairs.append((name, valid[name]))
        elif choice == 4:
            continue
        elif choice == 5:
            pairs.append((name, (draw_(raw_values),)))
        else:
            pairs.append((name, draw_(texts)))
    extra = draw_(st.integers(0, 6))
    if extra == 0:
        pairs.append(("vsn", draw_(texts)))
    elif extra == 1:
        pairs.append((draw_(st.sampled_from([NUL, hostile.LONG, "x"])), draw_(texts)))
    elif extra == 2 and pairs:
        pairs.append((pairs[0][0], draw_(texts)))  # a repeated key: the last one wins
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)
    # A remote address of its own per request (unless fuzzed): the server slows down repeated
    # 401s from one address (gateways/connect.py), which would only make the test slow.
    n = draw_(st.integers(0, 65_535))
    request_headers = {"User-Agent": UAS[path], "X-Forwarded-For": f"198.51.{n // 256}.{n % 256}"}
    for name in ("User-Agent", "X-Forwarded-For", "x-geo-location-region",
                 "x-geo-location-city", "x-geo-location-coordinates", "Origin"):  # fmt: skip
        if draw_(st.integers(0, 7)) == 0:
            request_headers[name] = draw_(headers)
    return query, request_headers


def upgrade(server: LiveServer, path: str, query: str, headers: dict[str, str]) -> int:
    """The status of a hand-written WebSocket upgrade request (101 or the refusal's)."""
    lines = [
        f"GET {path}?{query} HTTP/1.1",
        f"Host: {server.host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(request)
        status = b""
        while b"\r\n" not in status:
            chunk = sock.recv(4096)
            if not chunk:
                break
            status += chunk
    parts = status.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def valid_params(world: World, path: str) -> dict[str, str]:
    if path == CLIENT_PATH:
        return world.client_params()
    if path == GATEWAY_PATH:
        return world.gateway_params()
    return world.relay_params(global_=False)


@pytest.mark.parametrize("path", [CLIENT_PATH, GATEWAY_PATH, RELAY_PATH])
async def test_connect_parameters_and_headers(live, path: str) -> None:
    world = await run_sync(make_world)
    start = live.log_path.stat().st_size
    valid = valid_params(world, path)
    cases = draw(requests(path, valid), CONNECTS)
    everything_valid = "&".join(f"{k}={quote(v, safe='')}" for k, v in valid.items())
    cases.insert(0, (everything_valid, {"User-Agent": UAS[path]}))
    statuses: dict[int, int] = {}
    bad = []
    for query, request_headers in cases:
        await run_sync(cache.delete, "socket-connect-failures:127.0.0.1")  # unparsable XFF
        status = await run_sync(upgrade, live, path, query, request_headers)
        statuses[status] = statuses.get(status, 0) + 1
        dropped = status == 0 and len(path) + len(query) > MAX_LINE - 20
        if status not in ALLOWED and not dropped:
            bad.append(f"{status}: ?{query[:300]} {request_headers!r:.300}")
    with live.log_path.open("rb") as log:
        log.seek(start)
        tracebacks = hostile.tracebacks(log.read().decode(errors="replace"))
    print(f"{path}: {len(cases)} connects, statuses {statuses}")
    assert not bad, "\n".join(bad[:20])
    assert not tracebacks, "\n\n".join(tracebacks[:5])
    assert statuses.get(101), "no connect succeeded: the valid values are never used"


async def test_nul_in_user_agent_is_refused_400(live) -> None:
    """A NUL in the User-Agent (stored as the token's and device's last-seen user agent, which
    PostgreSQL text cannot hold): 400 "upgrade failed" (§2.6), never a 500 a device retries."""
    world = await run_sync(make_world)
    for path, params in (
        (CLIENT_PATH, world.client_params()),
        (GATEWAY_PATH, world.gateway_params()),
        (RELAY_PATH, world.relay_params(global_=False)),
    ):
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        ua = f"{UAS[path]}{NUL}"
        assert await run_sync(upgrade, live, path, query, {"User-Agent": ua}) == 400, path
        assert await run_sync(upgrade, live, path, query, {"User-Agent": UAS[path]}) == 101, path
