"""Playwright against the real ASGI server (daphne), for admin pages with live updates (§7).

pytest-django's `live_server` is WSGI: pages work but the `/live` socket does not. Tests that
need a page to change by itself use `portal_server` instead (the session's daphne on the test
database; rows must be committed, so it needs the transactional test DB), sign in with
`sign_in_page`, and drive devices with `gateway_socket`/`client_socket` (sync WebSocket devices
speaking Phoenix V1 frames, like connlib).

The app test packages' conftests provide `portal_server` and `live_daphne`:
`from tests.portal_browser import portal_server  # noqa: F401`.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.live import DEVICE_HEADERS, LiveServer

GATEWAY_UA = "Linux/24.04 gateway/1.4.17"


@pytest.fixture
def portal_server(
    request: pytest.FixtureRequest, live_daphne: LiveServer, transactional_db: Any
) -> Iterator[LiveServer]:
    """The daphne server for one sync (Playwright) test; its base URL is `http://{host}`. The
    server's log of a failed test is printed (needs `pytest_runtest_makereport` of tests.live
    in the conftest)."""
    from django.core.cache import cache

    cache.clear()
    start = live_daphne.log_path.stat().st_size
    yield live_daphne
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        with live_daphne.log_path.open("rb") as log:
            log.seek(start)
            print("---- daphne log of this test ----")
            print(log.read().decode(errors="replace"))


def base_url(server: LiveServer) -> str:
    return f"http://{server.host}"


def sign_in_page(page: Any, server: LiveServer, identity: Any) -> None:
    """Give the page's browser context a stored session for `identity` (bound to its UA)."""
    from accounts.tests.portal import session_cookie_for

    user_agent = page.evaluate("navigator.userAgent")
    name, value = session_cookie_for(identity, user_agent)
    page.context.add_cookies([{"name": name, "value": value, "url": base_url(server)}])


class SyncDevice:
    """A connlib-like device socket (V1 frames, integer refs from 0), synchronous."""

    def __init__(self, server: LiveServer, path: str, params: Mapping[str, Any], ua: str) -> None:
        headers = dict(DEVICE_HEADERS)
        headers.pop("User-Agent", None)
        self._connect = connect(
            server.url(path, params),
            additional_headers=headers,
            user_agent_header=ua,
            open_timeout=10,
        )
        self.ws: ClientConnection = self._connect.__enter__()
        self.ref = 0
        self.init: dict[str, Any] = {}  # the `init` frame, once joined

    def send(self, topic: str, event: str, payload: Any) -> None:
        ref, self.ref = self.ref, self.ref + 1
        self.ws.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref}))

    def recv(self, timeout: float = 10) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout))

    def expect(self, event: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            frame = self.recv(timeout)
            if frame.get("event") == event:
                return frame

    def close(self) -> None:
        self._connect.__exit__(None, None, None)

    def __enter__(self) -> SyncDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def public_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def gateway_socket(server: LiveServer, token: str, name: str = "gw-1") -> SyncDevice:
    """Connect and join a gateway with a site token (encoded); returns after `init`."""
    device = SyncDevice(
        server,
        "/gateway/websocket",
        {"token": token, "external_id": secrets.token_hex(32), "name": name,
         "public_key": public_key()},
        GATEWAY_UA,
    )  # fmt: skip
    device.send("gateway", "phx_join", {})
    device.init = device.expect("init")
    return device


def client_socket(server: LiveServer, token: str, name: str = "laptop-1") -> SyncDevice:
    """Connect and join a client with a client token (encoded); returns after `init`."""
    device = SyncDevice(
        server,
        "/client/websocket",
        {"token": token, "external_id": secrets.token_hex(32), "name": name,
         "public_key": public_key()},
        DEVICE_HEADERS["User-Agent"],
    )  # fmt: skip
    device.send("client", "phx_join", {})
    device.init = device.expect("init")
    return device
