"""Device-socket benchmark: the figures of issue 12, each beside a bare Channels consumer's.

    make bench                                   # everything at the default (target) sizes
    make bench ARGS="--sockets 2000 --reconnect-clients 1000 --fanout-large 1000 --burst 2000"
    make bench ARGS="--only flows --flows 200 --json /tmp/bench.json"
    python -m firezone.devservices exec -- python bench/sockets.py [options]

It needs DATABASE_URL and REDIS_URL (devservices gives throwaway ones; `make bench` never uses
configured ones), migrates that database and seeds it through the factories. Every server under
test is a daphne process started with the production socket options (`DAPHNE_SOCKET_OPTIONS`);
the floor is the same daphne command line serving `bench/bare_asgi.py`, a plain Channels consumer
that only accepts, answers `phx_join` and heartbeats (no database, same Redis channel layer).
Devices behave like connlib: V1 frames, a `null` join payload, a heartbeat every 30 s, WebSocket
pings answered, no compression.

Phases (`--only` picks some; each has `--phase-timeout`, after which it reports what it reached):

  idle    the bare consumer, then the real server (each a fresh daphne), ramp to `--sockets`
          joined clients (`--idle-per-account` per account, each user seeing `--idle-resources`
          resources; the real clients wait for `init`). VmRSS from /proc at checkpoints; RSS per
          socket = growth over the warm (100-socket) reading / sockets added since.
  joins   on a FRESH daphne, `--reconnect-clients` clients (the idle phase's devices: same
          tokens, external ids and keys, so these are reconnects after a restart) connect + join
          + receive `init`, `--concurrency` handshakes in flight: clients/s and the seconds until
          the last one; the same against a fresh bare consumer.
  flows   one bench gateway answering every `authorize_flow` with `flow_authorized`; one client
          alone: `--flows` sequential create_flow -> flow_created (p50/p99); then
          `--flow-clients` clients at once (each sequential): flows/s.
  fanout  `--clients` joined clients, each seeing the `--resources` resources; an admin deletes
          one resource's policy through the service, `--changes` times: the time from commit to
          the last client's `resource_deleted` (worst run), RSS growth per client; then the same
          with `--fanout-large` clients.
  burst   with those clients still joined, ONE transaction (`group_members_change`) adds
          `--burst` users to a group whose policy grants one more resource: the time from commit
          to the last affected client's `resource_created_or_updated` for it.

The service calls of fanout/burst run in a separate process (same settings), so their Python work
does not delay the client's reading; arrival and commit times are both CLOCK_MONOTONIC.

Everything (daphne, PostgreSQL, Redis and this client) shares the machine's cores, so the figures
are floors for one process on this machine. The client is a minimal asyncio WebSocket client (it
reads a frame's event name without parsing large frames); its CPU use is reported per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import platform
import random
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench._env import configure_environment as bench_environment  # noqa: E402
from firezone.devservices import DAPHNE_SOCKET_OPTIONS, free_port, stop_process  # noqa: E402

CLIENT_UA = "Mac OS/14.5 (arm64) connlib/1.4.0"
GATEWAY_UA = "Linux/24.04 gateway/1.4.17"
HEARTBEAT_SECONDS = 30.0
# The idle ramp reports RSS at these socket counts (and at --sockets).
CHECKPOINTS = (1000, 2000, 5000, 10000, 15000, 20000, 30000, 50000)
# Descriptors a daphne process needs besides its device sockets (listener, Redis and PostgreSQL
# connections, log, pipes): the idle target is clamped to the open-files limit minus this.
FD_RESERVE = 150
REAL_APP = "firezone.asgi:application"
BARE_APP = "bench.bare_asgi:application"
PHASES = ("idle", "joins", "flows", "fanout", "burst")
now = time.monotonic  # CLOCK_MONOTONIC: comparable between this process and the service worker


# ------------------------------------------------------------------ environment and Django


def configure_environment() -> dict[str, str]:
    """The settings shared by this process (seeding), the service worker and every daphne."""
    return bench_environment(
        make_target="bench",
        script="sockets.py",
        allowed_hosts="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )


def setup_django() -> None:
    import django

    django.setup()


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise RLIMIT_NOFILE (every daphne child inherits it); returns (soft, hard) in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    except (ValueError, OSError):  # no CAP_SYS_RESOURCE: as far as the hard limit allows
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ------------------------------------------------------------------ seed data


@dataclass
class Seed:
    idle_tokens: list[str]  # one per idle account (`--idle-per-account` devices share it)
    # The bench account (flows, fanout, burst):
    client_tokens: list[str] = field(default_factory=list)  # one per user that gets a client
    user_ids: list[str] = field(default_factory=list)  # every user; the burst adds --burst of them
    site_token: str = ""
    resource_ids: list[str] = field(default_factory=list)
    admin_id: str = ""
    policy_ids: dict[str, str] = field(default_factory=dict)  # resource id -> its policy id
    burst_group_id: str | None = None  # G2
    burst_resource_id: str | None = None  # R2


def _users(account: Any, provider: Any, count: int) -> list[tuple[Any, Any]]:
    """`count` users with an identity each (bulk inserts: seeding only)."""
    from accounts.models import Actor, AuthIdentity
    from accounts.tests.factories import ActorFactory, IdentityFactory

    actors = Actor.objects.bulk_create(ActorFactory.build_batch(count, account=account))
    identities = AuthIdentity.objects.bulk_create(
        [IdentityFactory.build(actor=a, account=account, provider=provider) for a in actors]
    )
    return list(zip(actors, identities, strict=True))


def _grant(account: Any, site: Any, actors: list[Any], n_resources: int, tag: str) -> list[Any]:
    """`n_resources` DNS resources of `site`, each with a policy for one group of `actors`."""
    from accounts.models import ActorGroupMembership
    from accounts.tests.factories import GroupFactory, MembershipFactory
    from resources.models import Policy, Resource, ResourceConnection
    from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory

    group = GroupFactory(account=account)
    ActorGroupMembership.objects.bulk_create(
        [MembershipFactory.build(group=group, actor=a, account=account) for a in actors]
    )
    resources = Resource.objects.bulk_create(
        [
            ResourceFactory.build(
                account=account, address=f"svc{i}.{tag}.example.com", name=f"svc-{i}"
            )
            for i in range(n_resources)
        ]
    )
    ResourceConnection.objects.bulk_create(
        [
            ConnectionFactory.build(resource=r, account=account, gateway_group=site)
            for r in resources
        ]
    )
    Policy.objects.bulk_create(
        [PolicyFactory.build(account=account, actor_group=group, resource=r) for r in resources]
    )
    return resources


def seed(args: argparse.Namespace) -> Seed:
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connections, transaction
    from django.utils import timezone

    from accounts.services.tokens import token_create
    from accounts.tests.factories import AccountFactory, ProviderFactory
    from gateways.tests.factories import SiteFactory

    call_command("migrate", verbosity=0)
    expires_at = timezone.now() + timedelta(days=7)
    config = {"clients_upstream_dns": [{"protocol": "ip_port", "address": "1.1.1.1"}]}

    def client_token(actor: Any, identity: Any) -> str:
        issued = token_create(
            type="client", account=actor.account, actor=actor, identity=identity,
            expires_at=expires_at,
        )  # fmt: skip
        return issued.encoded

    started = now()
    idle_tokens = []
    n_idle_accounts = math.ceil(args.idle_devices / args.idle_per_account)
    with transaction.atomic():
        # The idle/joins devices: accounts of `--idle-per-account` devices of one user each,
        # who sees `--idle-resources` resources.
        for n in range(n_idle_accounts):
            idle_account = AccountFactory(slug=f"bench_idle_{n}", config=config)
            idle_provider = ProviderFactory(account=idle_account)
            idle_site = SiteFactory(account=idle_account, name="idle-site")
            [(idle_user, idle_identity)] = _users(idle_account, idle_provider, 1)
            _grant(idle_account, idle_site, [idle_user], args.idle_resources, f"idle{n}")
            idle_tokens.append(client_token(idle_user, idle_identity))
            if (n + 1) % 50 == 0:
                print(
                    f"   seeded {n + 1}/{n_idle_accounts} idle accounts ({now() - started:.0f} s)"
                )
    if n_idle_accounts:
        print(
            f"   seeded {n_idle_accounts} idle accounts ({args.idle_resources} resources each)"
            f" in {now() - started:.0f} s"
        )

    result = Seed(idle_tokens=idle_tokens)
    if args.parts & {"flows", "fanout", "burst"}:
        seed_bench_account(args, result, config, client_token)
    connections.close_all()
    return result


def seed_bench_account(
    args: argparse.Namespace, result: Seed, config: dict, client_token: Callable[..., str]
) -> None:
    """The measured account: `--resources` resources granted to the users that get a client;
    more users (up to `--burst`) for the membership burst, and its group G2 (empty) whose policy
    grants R2, one more resource of the same site."""
    from django.db import transaction

    from accounts.services.tokens import token_create
    from accounts.tests.factories import (
        AccountFactory,
        ActorFactory,
        GroupFactory,
        IdentityFactory,
        ProviderFactory,
    )
    from gateways.tests.factories import SiteFactory
    from resources.models import Policy
    from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory

    started = now()
    with transaction.atomic():
        account = AccountFactory(slug="bench", config=config)
        provider = ProviderFactory(account=account)
        site = SiteFactory(account=account, name="bench-site")
        admin = ActorFactory(account=account, admin=True)
        IdentityFactory(actor=admin, account=account, provider=provider)
        users = _users(account, provider, max(args.bench_users, 1))
        with_clients = users[: args.bench_clients]
        resources = _grant(account, site, [a for a, _ in with_clients], args.resources, "bench")
        for i, (actor, identity) in enumerate(with_clients):
            result.client_tokens.append(client_token(actor, identity))
            if (i + 1) % 2000 == 0:
                print(f"   issued {i + 1}/{len(with_clients)} client tokens")
        site_token = token_create(type="gateway_group", account=account, gateway_group=site)
        if "burst" in args.parts:
            burst_group = GroupFactory(account=account, name="bench-burst")
            burst_resource = ResourceFactory(
                account=account, address="burst.bench.example.com", name="burst"
            )
            ConnectionFactory(resource=burst_resource, account=account, gateway_group=site)
            PolicyFactory(account=account, actor_group=burst_group, resource=burst_resource)
            result.burst_group_id = str(burst_group.pk)
            result.burst_resource_id = str(burst_resource.pk)
    policies = Policy.objects.filter(account=account).values_list("resource_id", "id")
    result.policy_ids = {str(k): str(v) for k, v in policies.iterator()}
    result.user_ids = [str(a.pk) for a, _ in users]
    result.site_token = site_token.encoded
    result.resource_ids = [str(r.pk) for r in resources]
    result.admin_id = str(admin.pk)
    print(
        f"   seeded the bench account: {args.resources} resources + policies, {len(users)} users,"
        f" {len(result.client_tokens)} client tokens in {now() - started:.0f} s"
    )


# ------------------------------------------------------------------ the service worker process


def _timed_transaction(work: Callable[[], Any]) -> dict[str, Any]:
    """Run `work` in one transaction; the first on_commit hook marks the commit (before the
    hooks the services register, which publish the changes)."""
    from django.db import transaction

    marks: dict[str, float] = {}
    start = now()
    with transaction.atomic():
        transaction.on_commit(lambda: marks.setdefault("commit", now()))
        work()
    end = now()
    return {"start": start, "commit": marks.get("commit", end), "end": end}


def _admin_subject(admin_id: str) -> Any:
    from accounts.models import Actor
    from accounts.tests.factories import subject_for

    return subject_for(Actor.objects.select_related("account").get(pk=admin_id))


def _svc_delete_policy(admin_id: str, policy_id: str) -> dict[str, Any]:
    """The measured change: an admin deletes the policy of one resource."""
    from resources.services.policies import policy_delete

    subject = _admin_subject(admin_id)
    return _timed_transaction(lambda: policy_delete(subject=subject, policy=policy_id))


def _svc_add_members(admin_id: str, group_id: str, actor_ids: list[str]) -> dict[str, Any]:
    """The burst: one transaction adding `actor_ids` to a static group (one membership row and
    one recorded change per actor, as the "Edit Actors" page does)."""
    from accounts.services.groups import group_members_change

    subject = _admin_subject(admin_id)
    return _timed_transaction(
        lambda: group_members_change(subject=subject, group=group_id, add=actor_ids)
    )


SERVICE_CALLS: dict[str, Callable[..., dict[str, Any]]] = {
    "delete_policy": _svc_delete_policy,
    "add_members": _svc_add_members,
}


def _service_main(conn: Any) -> None:
    setup_django()
    from django.db import connections

    while True:
        message = conn.recv()
        if message is None:
            return
        seq, name, kwargs = message
        try:
            result = SERVICE_CALLS[name](**kwargs)
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        finally:
            connections.close_all()
        conn.send((seq, result))


class ServiceWorker:
    """A process of its own (spawned, same environment) running the domain services."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_service_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.seq = 0

    def _call(self, seq: int, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.conn.send((seq, name, kwargs))
        while True:  # a reply of an abandoned (timed-out) call is dropped
            got, result = self.conn.recv()
            if got == seq:
                return result

    async def call(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self.seq += 1
        return await asyncio.to_thread(self._call, self.seq, name, kwargs)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


# ------------------------------------------------------------------ the servers


CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) seconds of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


@dataclass
class Daphne:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def daphne(env: dict[str, str], workdir: Path, name: str, app: str = REAL_APP) -> Iterator[Daphne]:
    """One daphne process with the production socket options (the bare consumer gets exactly
    the same command line); a deep listen backlog so a burst of connects is not throttled by
    SYN retries."""
    port = free_port()
    log_path = workdir / f"daphne-{name}.log"
    command = [
        sys.executable, "-m", "firezone.webserver",
        "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=4096",
        *shlex.split(DAPHNE_SOCKET_OPTIONS), "-v", "0", app,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = now() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{log_path.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if now() > deadline:
                    raise RuntimeError("daphne did not start") from None
                time.sleep(0.05)
        server = Daphne(name, port, proc, log_path)
        print(f"   [daphne {name}: pid {proc.pid}, port {port}, {app}]")
        yield server
    finally:
        # Stopped before the bench closes its sockets: thousands of disconnect handlers would
        # only load the machine for the next phase.
        stop_process(proc, 10)
        log_summary(log_path, name)


def log_summary(log_path: Path, name: str) -> None:
    """Print what went wrong in a daphne's log (its tracebacks' last lines, counted)."""
    with contextlib.suppress(OSError):
        lines = log_path.read_text(errors="replace").splitlines()
        errors: dict[str, int] = {}
        for previous, line in zip(lines, [*lines[1:], ""], strict=True):
            if previous.startswith(("Traceback", "  ")) or not previous.strip():
                continue
            if ("Error" in previous or "Exception" in previous) and not line.startswith("  "):
                errors[previous[:160]] = errors.get(previous[:160], 0) + 1
        if errors:
            print(f"   [daphne {name} log: {sum(errors.values())} errors, {log_path}]")
            for message, count in sorted(errors.items(), key=lambda kv: -kv[1])[:3]:
                print(f"     {count} x {message}")


_REDIS: list[Any] = []


def redis_used_memory() -> int | None:
    import redis

    try:
        if not _REDIS:
            _REDIS.append(redis.Redis.from_url(os.environ["REDIS_URL"]))
        return int(_REDIS[0].info("memory")["used_memory"])
    except Exception:
        return None


class CpuMeter:
    """CPU used since creation: this client process, one daphne, and the whole machine."""

    def __init__(self, server: Daphne | None = None) -> None:
        self.server = server
        self.reset()

    def reset(self) -> None:
        self.t0 = now()
        self.client0 = sum(os.times()[:2])
        self.server0 = self.server.cpu_seconds() if self.server else 0.0
        self.machine0 = machine_cpu()

    def read(self) -> dict[str, float]:
        wall = max(now() - self.t0, 1e-9)
        busy, total = machine_cpu()
        cores = os.cpu_count() or 1
        result = {
            "client_pct": round((sum(os.times()[:2]) - self.client0) / wall * 100),
            "machine_pct": round(
                (busy - self.machine0[0]) / max(total - self.machine0[1], 1e-9) * 100 * cores
            ),
        }
        if self.server:
            result["daphne_pct"] = round((self.server.cpu_seconds() - self.server0) / wall * 100)
        return result

    def line(self) -> str:
        cpu = self.read()
        daphne_part = f", daphne {cpu['daphne_pct']}%" if "daphne_pct" in cpu else ""
        return (
            f"CPU: client {cpu['client_pct']}%{daphne_part}, machine {cpu['machine_pct']}%"
            f" of {(os.cpu_count() or 1) * 100}%"
        )


# ------------------------------------------------------------------ devices (the load generator)


class ConnectFailed(ConnectionError):
    pass


_EVENT_KEY = b'"event":"'


def frame_event(data: bytes | bytearray) -> str | None:
    """The `event` of a V1 frame without parsing it (the server writes compact JSON; `event`
    usually comes first); falls back to json for anything unusual."""
    i = data.find(_EVENT_KEY, 0, 200)
    if i < 0:
        i = data.rfind(_EVENT_KEY)
    if i >= 0:
        j = data.find(b'"', i + 9)
        if j > 0:
            return data[i + 9 : j].decode()
    try:
        frame = json.loads(data)
    except ValueError:
        return None
    return frame.get("event") if isinstance(frame, dict) else None


def _masked(data: bytes) -> bytes:
    key = random.getrandbits(32).to_bytes(4, "big")
    n = len(data)
    if not n:
        return key
    stream = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return key + (int.from_bytes(data, "big") ^ stream).to_bytes(n, "big")


def _frame(opcode: int, data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    return head + _masked(data)


class Device(asyncio.Protocol):
    """A connlib-like socket on a minimal WebSocket client: V1 text frames, integer refs.

    Pushes are routed by event name only (`frame_event`); a push's raw bytes go to `on_push`
    and to the one-shot `expect(event)` future; only replies that someone waits for are parsed.
    """

    __slots__ = (
        "buf", "closed", "expects", "key", "next_ref", "on_push", "opened", "replies",
        "request_bytes", "topic", "transport",
    )  # fmt: skip

    def __init__(self, request: bytes, topic: str) -> None:
        self.request_bytes = request
        self.topic = topic
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed = False
        self.next_ref = 0
        self.replies: dict[int, asyncio.Future] = {}
        self.expects: dict[str, asyncio.Future] = {}
        self.on_push: Callable[[Device, str | None, bytearray, float], None] | None = None
        self.key: int = -1  # the index of the device's user / identity

    # -------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request_bytes)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = ConnectFailed(f"connection closed ({exc or 'by the server'})")
        if not self.opened.done():
            self.opened.set_exception(error)
            self.opened.exception()
        for future in (*self.replies.values(), *self.expects.values()):
            if not future.done():
                future.set_exception(error)
                future.exception()  # no "exception never retrieved" when nobody waits

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.opened.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            if not head.startswith(b"HTTP/1.1 101"):
                status = head.split(b"\r\n", 1)[0].decode(errors="replace")
                body = bytes(buf[end + 4 : end + 204]).decode(errors="replace")
                self.opened.set_exception(ConnectFailed(f"{status} {body}".strip()))
                self.abort()
                return
            del buf[: end + 4]
            self.opened.set_result(None)
        while True:
            n = len(buf)
            if n < 2:
                return
            size = buf[1] & 0x7F
            start = 2
            if size == 126:
                if n < 4:
                    return
                size, start = (buf[2] << 8) | buf[3], 4
            elif size == 127:
                if n < 10:
                    return
                size, start = int.from_bytes(buf[2:10], "big"), 10
            end = start + size
            if n < end:
                return
            opcode = buf[0] & 0x0F  # server frames are unmasked and never fragmented by daphne
            payload = buf[start:end]
            del buf[:end]
            if opcode == 1:
                self._text(payload)
            elif opcode == 9:  # daphne's keepalive ping
                self._write(_frame(0xA, bytes(payload)))
            elif opcode == 8:
                self._write(_frame(0x8, bytes(payload[:2])))
                self.abort()
                return

    def _text(self, data: bytearray) -> None:
        at = now()
        event = frame_event(data)
        if event == "phx_reply":
            if self.replies:
                frame = json.loads(data)
                future = self.replies.pop(frame.get("ref"), None)
                if future is not None and not future.done():
                    future.set_result(frame.get("payload") or {})
            return
        future = self.expects.pop(event, None) if self.expects else None
        if future is not None and not future.done():
            future.set_result((data, at))
        if self.on_push is not None:
            self.on_push(self, event, data, at)

    # -------------------------------------------------------------- sending

    def _write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionError("socket closed")
        self.transport.write(data)

    def send(self, event: str, payload: Any, topic: str | None = None) -> int:
        ref, self.next_ref = self.next_ref, self.next_ref + 1
        frame = {"topic": topic or self.topic, "event": event, "payload": payload, "ref": ref}
        self._write(_frame(0x1, json.dumps(frame, separators=(",", ":")).encode()))
        return ref

    def heartbeat(self) -> None:
        ref, self.next_ref = self.next_ref, self.next_ref + 1
        text = b'{"topic":"phoenix","event":"heartbeat","payload":{},"ref":%d}' % ref
        self._write(_frame(0x1, text))

    async def request(self, event: str, payload: Any, timeout: float) -> dict[str, Any]:
        ref = self.send(event, payload)
        future = self.replies[ref] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self.replies.pop(ref, None)

    def expect(self, event: str) -> asyncio.Future:
        """A future for the next push of `event`: (raw frame, arrival time)."""
        future = self.expects.get(event)
        if future is None:
            future = self.expects[event] = asyncio.get_running_loop().create_future()
        return future

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def identity(namespace: str, index: int) -> tuple[str, str]:
    """A device's stable external id (hex sha256, like connlib) and WireGuard public key."""
    digest = hashlib.sha256(f"{namespace}-{index}".encode()).digest()
    return digest.hex(), base64.b64encode(hashlib.sha256(digest).digest()).decode()


async def open_device(
    port: int, path: str, params: dict[str, str], user_agent: str, topic: str, timeout: float
) -> Device:
    key = base64.b64encode(random.getrandbits(128).to_bytes(16, "big")).decode()
    request = (
        f"GET {path}?{urlencode(params)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
        f"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
        f"User-Agent: {user_agent}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    device: Device | None = None
    try:
        async with asyncio.timeout(timeout):
            _, device = await loop.create_connection(
                lambda: Device(request, topic), "127.0.0.1", port
            )
            await device.opened
    except BaseException:
        if device is not None:
            device.abort()
        raise
    return device


# Seconds per device: the WebSocket upgrade (authentication + upsert), then join (→ init).
TIMINGS: dict[str, list[float]] = {"connect": [], "join": [], "join+init": []}
# Connect attempts that failed and were retried (a device reconnects after a failed connect).
RETRIED: list[str] = []


async def join(device: Device, *, wait_init: float, timeout: float) -> None:
    """phx_join with connlib's null payload; then wait for `init` when `wait_init` > 0."""
    init = device.expect("init") if wait_init > 0 else None
    reply = await device.request("phx_join", None, timeout)
    if reply.get("status") != "ok":
        raise ConnectionError(f"join refused: {reply}"[:200])
    if init is not None:
        async with asyncio.timeout(wait_init):
            await init


async def open_client(
    port: int, token: str, namespace: str, index: int, *, wait_init: float, timeout: float = 60
) -> Device:
    external_id, public_key = identity(namespace, index)
    params = {
        "token": token,
        "external_id": external_id,
        "name": f"bench-{namespace}-{index}",
        "public_key": public_key,
    }
    started = now()
    device = await open_device(port, "/client/websocket", params, CLIENT_UA, "client", timeout)
    connected = now()
    device.key = index
    try:
        await join(device, wait_init=wait_init, timeout=timeout)
    except BaseException:
        device.abort()
        raise
    TIMINGS["connect"].append(connected - started)
    TIMINGS["join+init" if wait_init > 0 else "join"].append(now() - connected)
    return device


def timings_line() -> str:
    """The median/p99 of the client timings collected since the last call (then cleared)."""
    parts = []
    for name, values in TIMINGS.items():
        if values:
            parts.append(
                f"{name} p50 {pct(values, 50) * 1000:.0f} ms / p99 {pct(values, 99) * 1000:.0f} ms"
            )
        values.clear()
    if RETRIED:
        parts.append(f"{len(RETRIED)} connects retried, e.g. {RETRIED[0]}")
        RETRIED.clear()
    return "; ".join(parts) or "no timings"


async def heartbeats(devices: list[Device]) -> None:
    """Every device sends a Phoenix heartbeat every 30 s, spread over the period."""
    while True:
        batch = list(devices)
        if not batch:
            await asyncio.sleep(1)
            continue
        pause = HEARTBEAT_SECONDS / len(batch)
        start = now()
        for i, device in enumerate(batch):
            if not device.closed:
                with contextlib.suppress(Exception):
                    device.heartbeat()
            lag = start + (i + 1) * pause - now()
            if lag > 0.005:
                await asyncio.sleep(lag)


async def open_many(
    indexes: range, opener: Callable[[int], Any], concurrency: int, *, attempts: int = 3
) -> tuple[list[Any], list[str]]:
    """Open a device per index with at most `concurrency` handshakes in flight; a failed one is
    retried after a second (like a device), up to `attempts` times. Stops early when more than
    1% (at least 20) fail for good: the server is refusing."""
    semaphore = asyncio.Semaphore(concurrency)
    opened: list[Any] = []
    errors: list[str] = []
    limit = max(20, len(indexes) // 100)

    async def one(index: int) -> None:
        for attempt in range(attempts):
            if len(errors) > limit:
                return
            async with semaphore:
                try:
                    opened.append(await opener(index))
                    return
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"[:200]
            if attempt + 1 == attempts:
                errors.append(error)
            else:
                RETRIED.append(error)
                await asyncio.sleep(1)

    # Started in order, at most a few thousand waiting tasks at once.
    pending: set[asyncio.Task] = set()
    for index in indexes:
        pending.add(asyncio.create_task(one(index)))
        if len(pending) >= max(4 * concurrency, 256):
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.wait(pending)
    return opened, errors


def abort_all(devices: list[Device]) -> None:
    for device in devices:
        device.abort()


@contextlib.contextmanager
def aborted_on_exit(devices: list[Device]) -> Iterator[list[Device]]:
    try:
        yield devices
    finally:
        abort_all(devices)


@contextlib.asynccontextmanager
async def ticking(line: Callable[[], str], every: float = 10.0) -> Any:
    """Print `line()` every `every` seconds while the block runs (progress of long steps)."""

    async def tick() -> None:
        while True:
            await asyncio.sleep(every)
            print(f"     … {line()}")

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def kib(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.1f} KiB"


# ------------------------------------------------------------------ idle sockets


async def ramp(
    server: Daphne,
    target: int,
    opener: Callable[[int], Any],
    devices: list[Device],
    args: argparse.Namespace,
    out: dict[str, Any],
) -> None:
    """Ramp `devices` (filled by `opener`) to `target` joined sockets, reading daphne's RSS at
    checkpoints; `out` is kept up to date so a timeout still reports what was reached."""
    meter = CpuMeter(server)
    errors: list[str] = []
    warm = min(100, target)
    _, errors = await open_many(range(warm), opener, args.concurrency)
    await asyncio.sleep(2)
    base_n, base_rss, base_redis = len(devices), server.rss_kb(), redis_used_memory()
    out.update(target=target, sockets=base_n, warm_sockets=base_n, warm_rss_kb=base_rss, rows=[])
    print(
        f"   {'sockets':>8} {'daphne RSS':>11} {'RSS/socket':>11} {'Redis/socket':>13}"
        f" {'opened/s':>9}  client timings"
    )
    print(f"   {base_n:>8} {base_rss / 1024:>9.0f}MB {'(warm)':>11}")
    checkpoints = sorted({c for c in CHECKPOINTS if warm < c < target} | {target})
    progress_from = [now(), len(devices)]

    def progress() -> str:
        rate = (len(devices) - progress_from[1]) / max(now() - progress_from[0], 1e-9)
        return f"{len(devices)} sockets, {rate:.0f}/s; {meter.line()}"

    for checkpoint in checkpoints:
        if len(errors) > max(20, checkpoint // 100) or not server.alive():
            break
        started, before = now(), len(devices)
        progress_from[:] = [started, before]
        meter.reset()
        async with ticking(progress, 15):
            _, new_errors = await open_many(range(before, checkpoint), opener, args.concurrency)
        errors += new_errors
        elapsed = now() - started
        rate = (len(devices) - before) / elapsed
        cpu = meter.read()
        await asyncio.sleep(3)  # let joins, presence and the heartbeats settle
        if not server.alive():
            print("   daphne died:\n" + server.log_tail())
            break
        rss, redis_mem = server.rss_kb(), redis_used_memory()
        added = len(devices) - base_n
        per = (rss - base_rss) / added if added else None
        per_redis = (
            (redis_mem - base_redis) / added / 1024
            if added and redis_mem is not None and base_redis is not None
            else None
        )
        out["rows"].append(
            {
                "sockets": len(devices),
                "rss_kb": rss,
                "rss_per_socket_kib": None if per is None else round(per, 1),
                "redis_per_socket_kib": None if per_redis is None else round(per_redis, 1),
                "opened_per_s": round(rate, 1),
                "cpu": cpu,
            }
        )
        out.update(
            sockets=len(devices),
            rss_mb=round(rss / 1024),
            rss_per_socket_kib=None if per is None else round(per, 1),
            redis_per_socket_kib=None if per_redis is None else round(per_redis, 1),
            failed=len(errors),
        )
        print(
            f"   {len(devices):>8} {rss / 1024:>9.0f}MB {kib(per):>11} {kib(per_redis):>13}"
            f" {rate:>9.0f}  {timings_line()}"
        )
        print(
            f"            (CPU while opening: client {cpu['client_pct']}%,"
            f" daphne {cpu.get('daphne_pct')}%, machine {cpu['machine_pct']}%)"
        )
    alive = sum(1 for d in devices if not d.closed)
    out.update(alive=alive, failed=len(errors), errors=sorted(set(errors))[:5])
    print(
        f"   reached {len(devices)} joined sockets of {target} ({alive} still open,"
        f" {len(errors)} failed); daphne RSS {out.get('rss_mb')} MB,"
        f" {kib(out.get('rss_per_socket_kib'))} per socket"
    )
    for error in out["errors"]:
        print(f"     e.g. {error}")


async def bench_idle(args: argparse.Namespace, env: dict, seed: Seed, tmp: Path, out: dict) -> None:
    base_n = args.baseline_sockets
    print(
        f"   bare consumer at {base_n} sockets"
        + (
            " (the same count as the real run)"
            if base_n == args.sockets
            else " (--baseline-sockets)"
        )
        + f"; real server at {args.sockets}, {args.idle_per_account} per account, each client"
        f" seeing {args.idle_resources} resources; heartbeat every 30 s"
    )
    # The bare consumer, on a daphne of its own.
    print(f"\n-- idle: bare Channels consumer, ramp to {base_n} joined sockets")
    bare = out["baseline"] = {}
    devices: list[Device] = []
    with aborted_on_exit(devices), daphne(env, tmp, "bare-idle", BARE_APP) as server:

        async def bare_opener(index: int) -> Device:
            token = seed.idle_tokens[index // args.idle_per_account] if seed.idle_tokens else "x"
            device = await open_client(server.port, token, "idle", index, wait_init=0)
            devices.append(device)
            return device

        hb = asyncio.create_task(heartbeats(devices))
        try:
            await ramp(server, base_n, bare_opener, devices, args, bare)
        finally:
            hb.cancel()

    print(
        f"\n-- idle: the real server, ramp to {args.sockets} joined clients (each waits for init)"
    )
    real = out["real"] = {}
    devices = []
    with aborted_on_exit(devices), daphne(env, tmp, "idle") as server:

        async def opener(index: int) -> Device:
            token = seed.idle_tokens[index // args.idle_per_account]
            device = await open_client(
                server.port, token, "idle", index, wait_init=args.init_timeout
            )
            devices.append(device)
            return device

        hb = asyncio.create_task(heartbeats(devices))
        try:
            await ramp(server, args.sockets, opener, devices, args, real)
        finally:
            hb.cancel()
    out["primed"] = real.get("sockets", 0)


# ------------------------------------------------------------------ joins (after a restart)


async def measure_joins(
    server: Daphne, count: int, opener: Callable[[int], Any], args: argparse.Namespace, out: dict
) -> None:
    """Open `count` devices as fast as the server allows (`--concurrency` in flight)."""
    devices: list[Device] = []
    meter = CpuMeter(server)
    started = now()

    async def counted(index: int) -> Device:
        device = await opener(index)
        devices.append(device)
        return device

    def progress() -> str:
        return (
            f"{len(devices)}/{count} joined in {now() - started:.0f} s"
            f" ({len(devices) / max(now() - started, 1e-9):.0f}/s); {meter.line()}"
        )

    with aborted_on_exit(devices):
        async with ticking(progress, 10):
            opened, errors = await open_many(range(count), counted, args.concurrency)
        elapsed = now() - started
        cpu = meter.read()
        complete = len(opened) == count
        out.update(
            clients=count,
            joined=len(opened),
            failed=len(errors),
            seconds=round(elapsed, 2),
            all_joined_s=round(elapsed, 2) if complete else None,
            per_s=round(len(opened) / elapsed, 1),
            cpu=cpu,
            timings=timings_line(),
            errors=sorted(set(errors))[:5],
        )
        print(
            f"   {len(opened)}/{count} joined in {elapsed:.1f} s: {out['per_s']:.0f} clients/s"
            f" ({len(errors)} failed); {out['timings']}"
        )
        print(
            f"   CPU over the run: client {cpu['client_pct']}% of a core, daphne"
            f" {cpu.get('daphne_pct')}%, machine {cpu['machine_pct']}% of"
            f" {(os.cpu_count() or 1) * 100}%"
        )
        for error in out["errors"]:
            print(f"     e.g. {error}")


async def bench_joins(
    args: argparse.Namespace, env: dict, seed: Seed, tmp: Path, out: dict, primed: int
) -> None:
    n = args.reconnect_clients

    def token_of(index: int) -> str:
        return seed.idle_tokens[index // args.idle_per_account]

    print(
        f"   {n} clients ({args.idle_per_account} per account, {args.idle_resources} resources"
        f" each), {args.concurrency} handshakes in flight, each on a fresh daphne"
    )
    print(f"\n-- joins: bare Channels consumer, {n} connects + joins")
    bare = out["baseline"] = {}
    with daphne(env, tmp, "bare-joins", BARE_APP) as server:

        async def bare_opener(index: int) -> Device:
            return await open_client(server.port, token_of(index), "idle", index, wait_init=0)

        await measure_joins(server, n, bare_opener, args, bare)

    if primed < n:
        # The client rows do not exist yet: a first connect of every device, then a restart.
        print(f"\n-- joins: first connect of the {n} devices (their client rows), then a restart")
        first = out["first_connect"] = {}
        with daphne(env, tmp, "joins-first") as server:

            async def first_opener(index: int) -> Device:
                return await open_client(
                    server.port, token_of(index), "idle", index, wait_init=args.init_timeout
                )

            await measure_joins(server, n, first_opener, args, first)

    print(f"\n-- joins: the real server, {n} clients reconnecting (connect + join + init)")
    real = out["real"] = {}
    with daphne(env, tmp, "joins") as server:

        async def opener(index: int) -> Device:
            return await open_client(
                server.port, token_of(index), "idle", index, wait_init=args.init_timeout
            )

        await measure_joins(server, n, opener, args, real)


# ------------------------------------------------------------------ flows, fanout, burst


@dataclass
class Main:
    server: Daphne
    seed: Seed
    services: ServiceWorker
    clients: list[Device] = field(default_factory=list)  # fanout/burst clients, user order
    others: list[Device] = field(default_factory=list)  # the gateway and flow clients
    deleted: set[str] = field(default_factory=set)  # resources whose policy was deleted


async def open_gateway(main: Main) -> Device:
    external_id, public_key = identity("gateway", 0)
    params = {
        "token": main.seed.site_token,
        "external_id": external_id,
        "name": "bench-gw",
        "public_key": public_key,
    }
    gateway = await open_device(
        main.server.port, "/gateway/websocket", params, GATEWAY_UA, "gateway", 60
    )

    def answer(device: Device, event: str | None, data: bytearray, _: float) -> None:
        if event == "authorize_flow":
            ref = json.loads(data)["payload"]["ref"]
            with contextlib.suppress(ConnectionError):
                device.send("flow_authorized", {"ref": ref})

    gateway.on_push = answer
    await join(gateway, wait_init=30, timeout=60)
    return gateway


async def bench_flows(args: argparse.Namespace, main: Main, out: dict) -> None:
    print(
        f"   1 gateway online; {args.flows} flows from one client, then {args.flow_clients}"
        f" clients at once (each sequential), each client seeing {args.resources} resources"
    )
    gateway = await open_gateway(main)
    main.others.append(gateway)
    await asyncio.sleep(1)  # presence of the gateway
    clients: list[Device] = []
    for index in range(args.flow_clients):
        device = await open_client(
            main.server.port, main.seed.client_tokens[index], "flow", index,
            wait_init=args.init_timeout,
        )  # fmt: skip
        clients.append(device)
        main.others.append(device)
    print(f"   {len(clients)} flow clients joined; {timings_line()}")
    hb = asyncio.create_task(heartbeats(main.others))
    waiting: dict[int, asyncio.Future] = {}

    def route(device: Device, event: str | None, data: bytearray, at: float) -> None:
        if event in ("flow_created", "flow_creation_failed"):
            future = waiting.pop(id(device), None)
            if future is not None and not future.done():
                future.set_result((event, data, at))

    resource_ids = [r for r in main.seed.resource_ids if r not in main.deleted]

    async def run(device: Device, count: int, result: dict[str, Any]) -> None:
        device.on_push = route
        loop = asyncio.get_running_loop()
        for _ in range(count):
            future = waiting[id(device)] = loop.create_future()
            started = now()
            payload = {"resource_id": random.choice(resource_ids), "connected_gateway_ids": []}
            device.send("create_flow", payload)
            try:
                async with asyncio.timeout(10):
                    event, data, at = await future
            except TimeoutError:
                waiting.pop(id(device), None)
                result["timeouts"] += 1
                continue
            if event == "flow_created":
                result["latencies"].append((at - started) * 1000)
            else:
                reason = (json.loads(data).get("payload") or {}).get("reason", "?")
                result["failures"][reason] = result["failures"].get(reason, 0) + 1

    async def measure(devices: list[Device], per_client: int, label: str) -> dict[str, Any]:
        result: dict[str, Any] = {"latencies": [], "timeouts": 0, "failures": {}}
        meter = CpuMeter(main.server)
        started = now()
        async with ticking(lambda: f"{len(result['latencies'])} flows", 15):
            await asyncio.gather(*(run(d, per_client, result) for d in devices))
        elapsed = now() - started
        latencies = result.pop("latencies")
        result.update(clients=len(devices), flows=len(latencies), cpu=meter.read())
        if not latencies:
            print(f"   {label}: no flow_created ({result})")
            return result
        result.update(
            p50_ms=round(pct(latencies, 50), 1),
            p90_ms=round(pct(latencies, 90), 1),
            p99_ms=round(pct(latencies, 99), 1),
            max_ms=round(max(latencies), 1),
            flows_per_s=round(len(latencies) / elapsed, 1),
        )
        print(
            f"   {label}: {result['flows']} flows: p50 {result['p50_ms']} ms,"
            f" p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms;"
            f" {result['flows_per_s']} flows/s; timeouts {result['timeouts']};"
            f" failures {result['failures'] or 0}; {meter.line()}"
        )
        return result

    try:
        await asyncio.gather(*(run(c, 3, {"latencies": [], "timeouts": 0, "failures": {}})
                               for c in clients))  # fmt: skip
        out["one_client"] = await measure(clients[:1], args.flows, "1 client")
        per_client = max(5, math.ceil(args.flows / len(clients)))
        out["parallel"] = await measure(clients, per_client, f"{len(clients)} clients at once")
    finally:
        hb.cancel()
        abort_all(main.others)
        main.others.clear()
        await asyncio.sleep(1)


async def grow_clients(args: argparse.Namespace, main: Main, target: int) -> dict[str, Any]:
    """Join clients of the bench account (users in order) until `target` are open."""
    target = min(target, len(main.seed.client_tokens))
    start = len(main.clients)
    rss_before = main.server.rss_kb()
    meter = CpuMeter(main.server)
    started = now()

    async def opener(index: int) -> Device:
        device = await open_client(
            main.server.port, main.seed.client_tokens[index], "fan", index,
            wait_init=args.init_timeout,
        )  # fmt: skip
        main.clients.append(device)
        return device

    def progress() -> str:
        done = len(main.clients) - start
        return (
            f"{len(main.clients)}/{target} clients joined ({done / (now() - started):.0f}/s);"
            f" {meter.line()}"
        )

    async with ticking(progress, 10):
        _, errors = await open_many(range(start, target), opener, args.concurrency)
    join_s = now() - started
    cpu = meter.read()
    await asyncio.sleep(3)
    rss_after = main.server.rss_kb()
    added = len(main.clients) - start
    per = (rss_after - rss_before) / added if added else None
    print(
        f"   {len(main.clients)} clients joined ({added} in {join_s:.1f} s, {len(errors)} failed;"
        f" {timings_line()}); daphne RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB:"
        f" {kib(per)} per client socket; CPU client {cpu['client_pct']}%,"
        f" daphne {cpu.get('daphne_pct')}%"
    )
    for error in sorted(set(errors))[:3]:
        print(f"     e.g. {error}")
    return {
        "clients": len(main.clients),
        "added": added,
        "failed": len(errors),
        "join_s": round(join_s, 1),
        "rss_mb": round(rss_after / 1024),
        "rss_per_client_kib": None if per is None else round(per, 1),
        "cpu": cpu,
    }


async def timed_change(
    args: argparse.Namespace,
    main: Main,
    devices: list[Device],
    event: str,
    marker: str,
    service: str,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run one service call in the worker; the time from its commit until every device in
    `devices` received `event` whose frame contains `marker`."""
    expected = [d for d in devices if not d.closed]
    needle = marker.encode()
    arrivals: list[float] = []
    seen: set[int] = set()
    done = asyncio.get_running_loop().create_future()

    def route(device: Device, got: str | None, data: bytearray, at: float) -> None:
        if got == event and id(device) not in seen and needle in data:
            seen.add(id(device))
            arrivals.append(at)
            if len(arrivals) == len(expected) and not done.done():
                done.set_result(None)

    for device in expected:
        device.on_push = route
    try:
        timings = await main.services.call(service, **kwargs)
        if "error" in timings:
            print(f"   the service failed: {timings['error']}")
            return {"error": timings["error"], "expected": len(expected), "received": 0}
        if expected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.change_timeout):
                    await asyncio.shield(done)
    finally:
        for device in expected:
            device.on_push = None
    commit = timings["commit"]
    result: dict[str, Any] = {
        "expected": len(expected),
        "received": len(arrivals),
        "service_s": round(commit - timings["start"], 3),
        "publish_s": round(timings["end"] - commit, 3),
    }
    if arrivals:
        result.update(
            first_s=round(min(arrivals) - commit, 3),
            p50_s=round(statistics.median(arrivals) - commit, 3),
            last_arrival_s=round(max(arrivals) - commit, 3),
        )
    # "The last client" is only defined when every one of them got it.
    result["last_s"] = result.get("last_arrival_s") if len(arrivals) == len(expected) else None
    return result


def change_line(label: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"   {label}: service error {r['error']}"
    if not r["received"]:
        return (
            f"   {label}: 0/{r['expected']} received within the timeout"
            f" (transaction {r['service_s']} s)"
        )
    return (
        f"   {label}: {r['received']}/{r['expected']} received; after the commit: first"
        f" {r['first_s'] * 1000:.0f} ms, median {r['p50_s'] * 1000:.0f} ms, last"
        f" {r['last_arrival_s'] * 1000:.0f} ms (transaction {r['service_s'] * 1000:.0f} ms,"
        f" publishing after commit {r['publish_s'] * 1000:.0f} ms)"
    )


async def policy_changes(args: argparse.Namespace, main: Main, label: str) -> list[dict]:
    runs = []
    candidates = [r for r in main.seed.resource_ids if r not in main.deleted]
    for resource_id in random.sample(candidates, min(args.changes, len(candidates))):
        main.deleted.add(resource_id)
        result = await timed_change(
            args, main, main.clients, "resource_deleted", resource_id, "delete_policy",
            admin_id=main.seed.admin_id, policy_id=main.seed.policy_ids[resource_id],
        )  # fmt: skip
        runs.append(result)
        print(change_line(f"{label} change {len(runs)}", result))
        await asyncio.sleep(1)
    return runs


def worst(runs: list[dict[str, Any]]) -> float | None:
    """The worst `last_s` of the runs; None when any run did not reach every client."""
    if not runs or any(r.get("last_s") is None for r in runs):
        return None
    return max(r["last_s"] for r in runs)


async def bench_fanout(args: argparse.Namespace, main: Main, out: dict) -> None:
    print(
        f"   policy deletion -> resource_deleted; {args.clients} then {args.fanout_large} joined"
        f" clients, each seeing {args.resources} resources; {args.changes} changes each"
    )
    out["small"] = await grow_clients(args, main, args.clients)
    out["small"]["runs"] = await policy_changes(args, main, f"{len(main.clients)} clients:")
    if args.fanout_large > args.clients:
        out["large"] = await grow_clients(args, main, args.fanout_large)
        out["large"]["runs"] = await policy_changes(args, main, f"{len(main.clients)} clients:")


async def bench_burst(args: argparse.Namespace, main: Main, out: dict) -> None:
    wanted = min(args.fanout_large, args.burst)
    if len(main.clients) < wanted:
        print(f"   joining {wanted} clients first")
        out["clients"] = await grow_clients(args, main, wanted)
    affected = [d for d in main.clients if d.key < args.burst]
    print(
        f"   one transaction adds {args.burst} users to a group granting one more resource;"
        f" {sum(not d.closed for d in affected)} of them have a joined client"
    )
    result = await timed_change(
        args, main, affected, "resource_created_or_updated", main.seed.burst_resource_id or "",
        "add_members", admin_id=main.seed.admin_id, group_id=main.seed.burst_group_id,
        actor_ids=main.seed.user_ids[: args.burst],
    )  # fmt: skip
    out.update(result, memberships=args.burst)
    print(change_line(f"{args.burst} memberships", result))


# ------------------------------------------------------------------ the run


async def run_phase(
    name: str, timeout: float, results: dict[str, Any], work: Callable[[dict], Any]
) -> None:
    out = results.setdefault(name, {})
    print(f"\n== {name} (phase timeout {timeout:.0f} s) ==")
    started = now()
    try:
        async with asyncio.timeout(timeout):
            await work(out)
    except TimeoutError:
        out["timed_out"] = True
        print(f"   !! {name}: phase timeout after {now() - started:.0f} s; figures so far kept")
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
        print(f"   !! {name} failed: {out['error']}")
        traceback.print_exc()
    out["phase_s"] = round(now() - started, 1)
    print(f"   ({name} took {out['phase_s']} s)")


async def run(args: argparse.Namespace, env: dict[str, str], seed: Seed, tmp: Path) -> dict:
    parts, timeout = args.parts, args.phase_timeout
    results: dict[str, Any] = {}
    if "idle" in parts:
        await run_phase("idle", timeout, results, lambda o: bench_idle(args, env, seed, tmp, o))
    if "joins" in parts:
        primed = results.get("idle", {}).get("real", {}).get("sockets", 0)
        await run_phase(
            "joins", timeout, results, lambda o: bench_joins(args, env, seed, tmp, o, primed)
        )
    if parts & {"flows", "fanout", "burst"}:
        services = ServiceWorker()
        try:
            with daphne(env, tmp, "main") as server:
                main = Main(server=server, seed=seed, services=services)
                hb = asyncio.create_task(heartbeats(main.clients))
                with aborted_on_exit(main.clients):
                    try:
                        for name, bench in (
                            ("flows", bench_flows),
                            ("fanout", bench_fanout),
                            ("burst", bench_burst),
                        ):
                            if name in parts:
                                await run_phase(
                                    name, timeout, results,
                                    lambda o, bench=bench: bench(args, main, o),
                                )  # fmt: skip
                    finally:
                        hb.cancel()
        finally:
            services.stop()
    return results


# ------------------------------------------------------------------ figures, targets, summary


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The issue-12 keys (None when not measured) from the phases' results."""
    idle, joins = results.get("idle", {}), results.get("joins", {})
    flows, fanout, burst = (
        results.get("flows", {}),
        results.get("fanout", {}),
        results.get("burst", {}),
    )
    small, large = fanout.get("small", {}), fanout.get("large", {})
    return {
        "idle_sockets": idle.get("real", {}).get("sockets"),
        "idle_rss_per_socket_kib": idle.get("real", {}).get("rss_per_socket_kib"),
        "baseline_rss_per_socket_kib": idle.get("baseline", {}).get("rss_per_socket_kib"),
        "joins_per_s": joins.get("real", {}).get("per_s"),
        "baseline_joins_per_s": joins.get("baseline", {}).get("per_s"),
        "flow_p50_ms": flows.get("one_client", {}).get("p50_ms"),
        "flow_p99_ms": flows.get("one_client", {}).get("p99_ms"),
        "flows_per_s_50_clients": flows.get("parallel", {}).get("flows_per_s"),
        "fanout_clients": small.get("clients"),
        "fanout_last_s": worst(small.get("runs", [])),
        "fanout_5000_last_s": worst(large.get("runs", [])),
        "rss_per_client_1000_resources_kib": small.get("rss_per_client_kib"),
        "burst_10k_memberships_last_s": burst.get("last_s"),
        # extra keys
        "reconnect_5000_s": joins.get("real", {}).get("all_joined_s"),
        "baseline_reconnect_5000_s": joins.get("baseline", {}).get("all_joined_s"),
        "baseline_idle_sockets": idle.get("baseline", {}).get("sockets"),
        "reconnect_clients": joins.get("real", {}).get("clients"),
        "fanout_large_clients": large.get("clients"),
        "burst_memberships": burst.get("memberships"),
        "burst_service_s": burst.get("service_s"),
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    else:
        text = f"{value:,}"
    return f"{text}{unit}"


def verdicts(f: dict[str, Any], results: dict[str, Any], args: argparse.Namespace) -> list:
    """(target, measured?, passed, note) per target of issue 12."""

    def size_note(actual: Any, wanted: int, what: str) -> str:
        return (
            "" if actual == wanted else f" [measured with {actual or 0:,} {what}, not {wanted:,}]"
        )

    def ok(*conditions: Any) -> bool | None:
        return None if any(c is None for c in conditions) else all(conditions)

    def le(a: Any, b: Any) -> bool | None:
        return None if a is None or b is None else a <= b

    def ge(a: Any, b: Any) -> bool | None:
        return None if a is None or b is None else a >= b

    joins_real = results.get("joins", {}).get("real", {})
    reconnect_s = f["reconnect_5000_s"]
    if reconnect_s is not None and joins_real.get("clients", 5000) < 5000:
        reconnect_s = 5000 / f["joins_per_s"]  # a smaller run: judged by its rate
    base_rss, base_joins = f["baseline_rss_per_socket_kib"], f["baseline_joins_per_s"]
    return [
        (
            "idle",
            "20,000 idle joined clients (100 resources each) in one daphne process",
            ge(f["idle_sockets"], 20000),
            f"{_fmt(f['idle_sockets'])} joined"
            + size_note(args.idle_resources, 100, "resources")
            + (
                f" [--sockets clamped by the open-files limit {args.fd_limit:,}]"
                if args.fd_clamped
                else ""
            ),
        ),
        (
            "idle",
            "RSS per idle socket <= 64 KiB and <= 2x the bare consumer's",
            ok(
                le(f["idle_rss_per_socket_kib"], 64),
                le(f["idle_rss_per_socket_kib"], None if base_rss is None else 2 * base_rss),
            ),
            f"{_fmt(f['idle_rss_per_socket_kib'], ' KiB')} vs bare {_fmt(base_rss, ' KiB')}",
        ),
        (
            "joins",
            "joins (token, upsert, init with 100 resources) >= 200/s and >= 0.5x the bare's",
            ok(
                ge(f["joins_per_s"], 200),
                ge(f["joins_per_s"], None if base_joins is None else 0.5 * base_joins),
            ),
            f"{_fmt(f['joins_per_s'], '/s')} vs bare {_fmt(base_joins, '/s')}",
        ),
        (
            "joins",
            "5,000 clients reconnecting after a restart all joined within 30 s",
            le(reconnect_s, 30),
            f"{_fmt(joins_real.get('joined'))}/{_fmt(joins_real.get('clients'))} joined in"
            f" {_fmt(joins_real.get('seconds'), ' s')}"
            + (
                f" [measured with {joins_real['clients']:,} clients; 5,000 at that rate:"
                f" {_fmt(reconnect_s, ' s')}]"
                if joins_real.get("clients", 5000) < 5000
                else ""
            ),
        ),
        (
            "flows",
            "create_flow -> flow_created, one client: p50 <= 10 ms, p99 <= 50 ms",
            ok(le(f["flow_p50_ms"], 10), le(f["flow_p99_ms"], 50)),
            f"p50 {_fmt(f['flow_p50_ms'], ' ms')}, p99 {_fmt(f['flow_p99_ms'], ' ms')}"
            + size_note(args.resources, 1000, "resources"),
        ),
        (
            "flows",
            ">= 200 flows/s with 50 clients at once",
            ge(f["flows_per_s_50_clients"], 200),
            _fmt(f["flows_per_s_50_clients"], " flows/s")
            + size_note(args.flow_clients, 50, "clients"),
        ),
        (
            "fanout",
            "policy change -> last of 1,000 clients (1,000 resources each) <= 1 s",
            le(f["fanout_last_s"], 1),
            _fmt(f["fanout_last_s"], " s") + size_note(f["fanout_clients"], 1000, "clients"),
        ),
        (
            "fanout",
            "policy change -> last of 5,000 clients <= 2 s",
            le(f["fanout_5000_last_s"], 2),
            _fmt(f["fanout_5000_last_s"], " s")
            + size_note(f["fanout_large_clients"], 5000, "clients"),
        ),
        (
            "fanout",
            "RSS per client socket with 1,000 resources <= 128 KiB",
            le(f["rss_per_client_1000_resources_kib"], 128),
            _fmt(f["rss_per_client_1000_resources_kib"], " KiB")
            + size_note(args.resources, 1000, "resources"),
        ),
        (
            "burst",
            "a transaction changing 10,000 memberships reaches every affected client <= 2 s",
            le(f["burst_10k_memberships_last_s"], 2),
            _fmt(f["burst_10k_memberships_last_s"], " s")
            + f" (transaction {_fmt(f['burst_service_s'], ' s')})"
            + size_note(f["burst_memberships"], 10000, "memberships"),
        ),
    ]


def print_summary(f: dict[str, Any], results: dict[str, Any], args: argparse.Namespace) -> None:
    idle, joins = results.get("idle", {}), results.get("joins", {})
    fanout, burst = results.get("fanout", {}), results.get("burst", {})
    large = fanout.get("large", {})
    rows = [
        ("idle_sockets", _fmt(f["idle_sockets"]), _fmt(f["baseline_idle_sockets"]), ">= 20,000"),
        ("idle_rss_per_socket_kib", _fmt(f["idle_rss_per_socket_kib"]),
         _fmt(f["baseline_rss_per_socket_kib"]), "<= 64, <= 2x bare"),
        ("joins_per_s", _fmt(f["joins_per_s"]), _fmt(f["baseline_joins_per_s"]),
         ">= 200, >= 0.5x bare"),
        ("reconnect_5000_s", _fmt(f["reconnect_5000_s"]), _fmt(f["baseline_reconnect_5000_s"]),
         "<= 30"),
        ("flow_p50_ms", _fmt(f["flow_p50_ms"]), "—", "<= 10"),
        ("flow_p99_ms", _fmt(f["flow_p99_ms"]), "—", "<= 50"),
        ("flows_per_s_50_clients", _fmt(f["flows_per_s_50_clients"]), "—", ">= 200"),
        ("fanout_clients", _fmt(f["fanout_clients"]), "—", "1,000"),
        ("fanout_last_s", _fmt(f["fanout_last_s"]), "—", "<= 1"),
        ("fanout_5000_last_s", _fmt(f["fanout_5000_last_s"]), "—", "<= 2"),
        ("rss_per_client_1000_resources_kib", _fmt(f["rss_per_client_1000_resources_kib"]), "—",
         "<= 128"),
        ("burst_10k_memberships_last_s", _fmt(f["burst_10k_memberships_last_s"]), "—", "<= 2"),
    ]  # fmt: skip
    print("\n== summary (issue 12 figures; bare = a plain Channels consumer, same run) ==")
    print(f"{'figure':<36} {'this server':>12} {'bare':>12}  target")
    for name, real, bare, target in rows:
        print(f"{name:<36} {real:>12} {bare:>12}  {target}")
    notes = []
    base_n, real_n = idle.get("baseline", {}).get("target"), idle.get("real", {}).get("target")
    if base_n is not None:
        same = "the same count as" if base_n == real_n else "NOT the same count as"
        notes.append(f"bare idle RSS measured at {base_n:,} sockets ({same} the real run)")
    if args.fd_clamped:
        notes.append(
            f"--sockets clamped to {args.sockets:,}: the open-files hard limit is"
            f" {args.fd_limit:,} per process (not raisable here)"
        )
    for label, part in (("joins", joins.get("real")), ("bare joins", joins.get("baseline"))):
        if part and part.get("cpu"):
            cpu = part["cpu"]
            notes.append(
                f"{label}: client CPU {cpu['client_pct']}% of a core, daphne"
                f" {cpu.get('daphne_pct')}%, machine {cpu['machine_pct']}%"
            )
    if large:
        notes.append(
            f"RSS per client socket from {f['fanout_clients']} to {large.get('clients')} clients:"
            f" {kib(large.get('rss_per_client_kib'))}"
        )
    if burst.get("expected") is not None:
        notes.append(
            f"burst: {burst.get('received')}/{burst.get('expected')} affected clients received"
            f" it; transaction {burst.get('service_s')} s"
        )
    for phase, part in results.items():
        if part.get("timed_out"):
            notes.append(f"{phase}: hit the phase timeout ({args.phase_timeout:.0f} s)")
        if part.get("error"):
            notes.append(f"{phase}: {part['error']}")
    for note in notes:
        print(f"  * {note}")
    print()
    for phase, target, passed, detail in verdicts(f, results, args):
        if phase not in args.parts:
            print(f"SKIP  {target}")
        else:
            print(f"{'PASS' if passed else 'FAIL'}  {target}: {detail}")


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GB"
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} {platform.release()}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--sockets", type=int, default=20000, help="idle: joined clients to ramp to")
    add(
        "--baseline-sockets",
        type=int,
        help="idle: bare-consumer sockets (None: as many as --sockets)",
    )
    add("--idle-resources", type=int, default=100, help="idle/joins: resources per client")
    add("--idle-per-account", type=int, default=100, help="idle/joins: devices per account")
    add("--reconnect-clients", type=int, default=5000, help="joins: clients reconnecting")
    add("--concurrency", type=int, default=64, help="handshakes in flight")
    add("--resources", type=int, default=1000, help="flows/fanout: resources (and policies)")
    add("--flows", type=int, default=1000, help="flows: flows measured (one client, and total)")
    add("--flow-clients", type=int, default=50, help="flows: clients creating flows at once")
    add("--clients", type=int, default=1000, help="fanout: joined clients (first step)")
    add("--fanout-large", type=int, default=5000, help="fanout/burst: joined clients (second step)")
    add("--changes", type=int, default=3, help="fanout: policy changes timed per step")
    add("--burst", type=int, default=10000, help="burst: memberships added in one transaction")
    add("--change-timeout", type=float, default=30.0, help="seconds to wait for a fan-out")
    add("--init-timeout", type=float, default=60.0, help="seconds a client waits for init")
    add("--phase-timeout", type=float, default=600.0, help="seconds per phase at most")
    add("--only", choices=PHASES, action="append", help="run only these phases (repeatable)")
    add("--json", type=Path, help="also write the figures to this file")
    add("--logs", type=Path, help="keep the daphne logs in this directory")
    add("--seed-only", action="store_true", help="seed (timing it) and stop")
    args = parser.parse_args(argv)
    args.parts = set(args.only or PHASES)
    return args


def plan(args: argparse.Namespace) -> None:
    """Derived sizes: clamp to the open-files limit, what to seed."""
    wanted = max(args.sockets, args.baseline_sockets or 0) + 2 * FD_RESERVE
    soft, _hard = raise_fd_limit(wanted)
    args.fd_limit = soft
    args.fd_clamped = False
    ceiling = soft - FD_RESERVE
    if args.sockets > ceiling and "idle" in args.parts:
        print(
            f"!! open-files limit {soft}: one process cannot hold {args.sockets} sockets;"
            f" the idle ramp stops at {ceiling}"
        )
        args.sockets, args.fd_clamped = ceiling, True
    if args.baseline_sockets is None:
        args.baseline_sockets = args.sockets
    args.baseline_sockets = min(args.baseline_sockets, ceiling)
    parts = args.parts
    args.idle_devices = max(
        args.sockets if "idle" in parts else 0, args.reconnect_clients if "joins" in parts else 0
    )
    args.bench_clients = max(
        args.flow_clients if "flows" in parts else 0,
        args.clients if "fanout" in parts else 0,
        args.fanout_large if parts & {"fanout", "burst"} else 0,
    )
    args.bench_users = max(args.bench_clients, args.burst if "burst" in parts else 0)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    env = configure_environment()
    plan(args)
    print(f"machine: {machine()}; open files limit {args.fd_limit}")
    print(f"phases: {', '.join(p for p in PHASES if p in args.parts)}")
    setup_django()
    started = now()
    seeded = seed(args)
    print(f"seeded in {now() - started:.0f} s")
    if args.seed_only:
        return 0
    with tempfile.TemporaryDirectory(prefix="fz-bench-") as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(run(args, env, seeded, logs))
    figs = figures(results)
    print_summary(figs, results, args)
    if args.json:
        report = {
            **figs,
            "machine": machine(),
            "args": {
                k: (str(v) if isinstance(v, Path | set) else v) for k, v in vars(args).items()
            },
            "verdicts": [
                {"target": target, "verdict": "PASS" if passed else "FAIL", "detail": detail}
                for phase, target, passed, detail in verdicts(figs, results, args)
                if phase in args.parts
            ],
            "detail": results,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
