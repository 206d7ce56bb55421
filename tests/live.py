"""Live-server harness for the device-socket conformance tests (protocol.md §7).

* `live_daphne` (session fixture): a real daphne subprocess serving `firezone.asgi:application`
  against *this run's test database* (pytest-django's test DB, read from
  `connection.settings_dict`) and the same Redis, with the test process's token signing keys so
  tokens issued in a test verify in the server. Its output goes to a log file
  (`LiveServer.log()`), which is printed when a test using it fails.
* `live` (async function fixture): the same server for one async test; it requires the
  transactional test database, so rows a test writes are committed and visible to the server.
  Mark tests `@pytest.mark.django_db(transaction=True)` and `@pytest.mark.slow`. ORM reads may
  run in the test itself; writes that publish changes go through `run_sync`.
* `Device`: an async WebSocket device speaking Phoenix V1 frames with integer refs from 0, like
  connlib. Frames that an `expect` skips stay queued, so nothing is lost between assertions.

Use it from a conftest next to the tests: `from tests.live import live, live_daphne  # noqa: F401`.
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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from firezone.devservices import DAPHNE_SOCKET_OPTIONS, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
APPLICATION = "firezone.asgi:application"
T = TypeVar("T")

# The request metadata of the conformance scenarios' common setup (protocol.md §7): a 1.3
# connlib behind Firezone's load balancer in Kyiv.
CONNLIB_UA = "iOS/12.7 (iPhone) connlib/1.3.0"
DEVICE_HEADERS: dict[str, str] = {
    "User-Agent": CONNLIB_UA,
    "X-Forwarded-For": "189.172.73.153",
    "x-geo-location-region": "Ukraine",
    "x-geo-location-city": "Kyiv",
    "x-geo-location-coordinates": "50.4333,30.5167",
}
# Settings for the server process (environment variables read by firezone/settings.py).
SERVER_ENV: dict[str, str] = {
    "RELAYS_PRESENCE_DEBOUNCE_MS": "300",
    "CLIENT_RECOMPUTE_SECONDS": "2",
    "CELERY_TASK_ALWAYS_EAGER": "true",
}


# ------------------------------------------------------------------ the server


def database_url() -> str:
    """The URL of the database this process uses now (the test database under pytest-django)."""
    from django.db import connection

    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    host = db["HOST"] or db.get("OPTIONS", {}).get("host", "")
    if host.startswith("/"):  # unix socket directory (embedded PostgreSQL)
        return f"postgres://{user}@/{db['NAME']}?host={host}"
    password = quote(db["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}" if password else user
    return f"postgres://{auth}@{host or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def server_env(**overrides: str) -> dict[str, str]:
    """The environment of a server process sharing this test run's database, Redis and keys."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k != "FIREZONE_TESTING"}
    env.update(
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        TOKENS_KEY_BASE=settings.TOKENS_KEY_BASE,
        TOKENS_SALT=settings.TOKENS_SALT,
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="firezone.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(SERVER_ENV)
    env.update(overrides)
    return env


def application_name(port: int) -> str:
    """The PostgreSQL `application_name` (PGAPPNAME) of the sessions of the server on `port`."""
    return f"fz-live-daphne-{port}"


@dataclass
class LiveServer:
    port: int
    log_path: Path
    process: subprocess.Popen

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def application_name(self) -> str:
        return application_name(self.port)

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"ws://{self.host}{path}{query}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def device(self) -> Device:
        return Device(self)

    def http(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """A plain HTTP request (with `body`, if any): (status, lower-cased headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            content = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, content
        finally:
            conn.close()


@contextlib.contextmanager
def run_daphne(
    env: Mapping[str, str], application: str = APPLICATION, *, startup_timeout: float = 30
) -> Iterator[LiveServer]:
    """Run daphne (`firezone.webserver`, as `make run` and the image do) on a free port with the
    production socket options until the block exits."""
    port = free_port()
    env = {**env, "PGAPPNAME": application_name(port)}
    with tempfile.TemporaryDirectory(prefix="fz-live-") as tmp:
        log_path = Path(tmp) / "daphne.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "firezone.webserver", "-b", "127.0.0.1",
                    "-p", str(port), *DAPHNE_SOCKET_OPTIONS.split(), application,
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"daphne exited:\n{log_path.read_text(errors='replace')}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"daphne did not start:\n{log_path.read_text()}")
                    time.sleep(0.05)
            yield LiveServer(port, log_path, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for_sessions_to_end(*servers: LiveServer, timeout: float = 10) -> None:
    """PostgreSQL ends a dead client's backend asynchronously: wait for the stopped servers'
    sessions to be gone, or pytest-django cannot drop the test database. Only theirs (told apart
    by `application_name`): the test process's own idle connections never end, and another
    module's server may still be running."""
    from django.db import connection

    names = [server.application_name for server in servers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = ANY(%s)",
                [names],
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.fixture(scope="session")
def live_daphne(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveServer]:
    """One server for the session (the test database exists once `django_db_setup` ran)."""
    with run_daphne(server_env()) as server:
        yield server
    with django_db_blocker.unblock():
        wait_for_sessions_to_end(server)


# Remote addresses whose failed connects the server throttles (gateways.connect): cleared before
# each test so one test's deliberate 401s never slow down the next one.
_THROTTLED_IPS = ("127.0.0.1", "189.172.73.153")


@pytest.fixture
async def live(
    request: pytest.FixtureRequest, live_daphne: LiveServer, transactional_db: Any
) -> AsyncIterator[LiveServer]:
    """The server for one async test. Async on purpose: its teardown runs in the test's context,
    where Django keeps the test's own database connection (`connections` are per async
    context), and closes it; otherwise every test would leak one open session."""
    from django.core.cache import cache
    from django.db import connections

    for ip in _THROTTLED_IPS:
        cache.delete(f"socket-connect-failures:{ip}")
    # pytest-asyncio runs the test in a copy of this fixture's context: create the connection
    # wrapper here so the test's copy shares it and the teardown below can close it.
    connections["default"].ensure_connection()
    start = live_daphne.log_path.stat().st_size
    yield live_daphne
    connections.close_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        with live_daphne.log_path.open("rb") as log:
            log.seek(start)
            print("---- daphne log of this test ----")
            print(log.read().decode(errors="replace"))


# ------------------------------------------------------------------ sync code from async tests


async def run_sync(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run sync ORM code from an async test, in a worker thread with its own connection.

    Needed for anything that publishes changes: `transaction.on_commit` hands events to the
    channel layer through `async_to_sync`, which refuses to run on the event loop's thread. The
    thread's connection is closed afterwards (an open one would block dropping the test DB).
    """
    from django.db import connections

    def call() -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


# ------------------------------------------------------------------ the device


class Rejected(Exception):
    """The upgrade was answered with an HTTP status instead of 101."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers)

    @property
    def text(self) -> str:
        return self.body.decode()


def frame(topic: str, event: str, payload: Any, ref: Any = None) -> dict[str, Any]:
    """A whole V1 frame as the server sends it (for exact assertions)."""
    return {"event": event, "payload": payload, "ref": ref, "topic": topic}


def reply(topic: str, ref: Any, status: str = "ok", response: Any = None) -> dict[str, Any]:
    """A whole `phx_reply` frame."""
    payload = {"response": {} if response is None else response, "status": status}
    return frame(topic, "phx_reply", payload, ref)


class Device:
    """A connlib-like WebSocket device: V1 frames, integer refs from 0."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.ws: ClientConnection | None = None
        self.next_ref = 0
        self.frames: list[dict[str, Any]] = []  # received, not yet consumed

    async def __aenter__(self) -> Device:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Device:
        """Open the socket; raises `Rejected` when the upgrade is refused. The query string is
        form-encoded like connlib's; `User-Agent` in `headers` is the only one sent (none if
        absent)."""
        headers = dict(DEVICE_HEADERS if headers is None else headers)
        user_agent = headers.pop("User-Agent", None)
        try:
            self.ws = await connect(
                self.server.url(path, params),
                additional_headers=headers,
                user_agent_header=user_agent,
                open_timeout=10,
                max_size=None,
            )
        except InvalidStatus as exc:
            response = exc.response
            body = bytes(response.body or b"")
            raise Rejected(response.status_code, body, response.headers) from None
        return self

    async def send(self, topic: str, event: str, payload: Any, *, ref: Any = ...) -> Any:
        """Send a frame; the ref is the next integer unless given. Returns the ref."""
        if ref is ...:
            ref, self.next_ref = self.next_ref, self.next_ref + 1
        await self.send_raw({"topic": topic, "event": event, "payload": payload, "ref": ref})
        return ref

    async def send_raw(self, data: Any) -> None:
        assert self.ws is not None, "not connected"
        await self.ws.send(data if isinstance(data, str) else json.dumps(data))

    async def join(self, topic: str, payload: Any = None) -> dict[str, Any]:
        """Send `phx_join` and return its reply frame (asserting nothing)."""
        ref = await self.send(topic, "phx_join", payload)
        return await self.expect(event="phx_reply", topic=topic, ref=ref)

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.ws is not None, "not connected"
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return json.loads(raw)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame (queued ones first)."""
        if self.frames:
            return self.frames.pop(0)
        return await self._read(timeout)

    async def expect(
        self,
        event: str | None = None,
        topic: str | None = None,
        *,
        ref: Any = ...,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The first frame (queued or arriving within `timeout`) matching the filters; frames
        that do not match stay queued in order."""

        def matches(f: dict[str, Any]) -> bool:
            return (
                (event is None or f.get("event") == event)
                and (topic is None or f.get("topic") == topic)
                and (ref is ... or f.get("ref") == ref)
            )

        for i, f in enumerate(self.frames):
            if matches(f):
                return self.frames.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                f = await self._read(remaining)
            except TimeoutError:
                raise AssertionError(
                    f"no frame with event={event!r} topic={topic!r} ref={ref!r} within "
                    f"{timeout}s; queued: {self.frames}"
                ) from None
            if matches(f):
                return f
            self.frames.append(f)

    async def expect_nothing(self, seconds: float = 0.5) -> None:
        """No frame is queued and none arrives for `seconds`."""
        assert not self.frames, f"unexpected frames: {self.frames}"
        try:
            f = await self._read(seconds)
        except TimeoutError:
            return
        except ConnectionClosed:
            raise AssertionError("the socket was closed") from None
        raise AssertionError(f"unexpected frame: {f}")

    async def expect_closed(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait for the server to close the socket; returns the frames received before."""
        assert self.ws is not None, "not connected"
        received = list(self.frames)
        self.frames.clear()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                received.append(await self._read(remaining))
            except ConnectionClosed:
                return received
            except TimeoutError:
                raise AssertionError(f"socket still open after {timeout}s: {received}") from None

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code if self.ws is not None else None

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep each phase's report on the item (`rep_call`), so `live` can print the server log
    of a failed test. Import it into the conftest that imports the fixtures."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# ------------------------------------------------------------------ two servers


def run_daphnes(django_db_blocker: Any, **env: str) -> Iterator[tuple[LiveServer, ...]]:
    """The body of a `two_daphnes` fixture whose servers get the settings `env` (environment
    variables read by firezone/settings.py). A test module overrides the fixture with it:

        @pytest.fixture(scope="module")
        def two_daphnes(django_db_setup, django_db_blocker):
            yield from run_daphnes(django_db_blocker, API_REFILL_RATE="0.001")
    """
    with contextlib.ExitStack() as stack:
        servers = tuple(stack.enter_context(run_daphne(server_env(**env))) for _ in range(2))
        yield servers
    with django_db_blocker.unblock():
        wait_for_sessions_to_end(*servers)


@pytest.fixture(scope="module")
def two_daphnes(django_db_setup: Any, django_db_blocker: Any) -> Iterator[tuple[LiveServer, ...]]:
    """Servers A and B: separate processes, the same test database, Redis and keys. Import it
    (with `servers`) into a test module: `from tests.live import servers, two_daphnes`."""
    yield from run_daphnes(django_db_blocker)


@pytest.fixture
async def servers(
    request: pytest.FixtureRequest, two_daphnes: tuple[LiveServer, ...], transactional_db: Any
) -> AsyncIterator[tuple[LiveServer, ...]]:
    """Both servers for one async test (see `live` for why this is async)."""
    from django.db import connections

    connections["default"].ensure_connection()
    starts = [server.log_path.stat().st_size for server in two_daphnes]
    try:
        yield two_daphnes
    finally:
        connections.close_all()
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        for name, server, start in zip("AB", two_daphnes, starts, strict=True):
            with server.log_path.open("rb") as log:
                log.seek(start)
                print(f"---- daphne {name} log of this test ----")
                print(log.read().decode(errors="replace"))
