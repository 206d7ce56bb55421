"""Device-socket benchmark: one daphne process, a throwaway PostgreSQL + Redis.

    make bench                                   # everything at the default sizes
    make bench ARGS="--sockets 2000 --clients 200 --flows 200"
    python -m firezone.devservices exec -- python bench/sockets.py [options]

It needs DATABASE_URL and REDIS_URL (devservices gives throwaway ones; `make bench` never uses
configured ones), migrates that database, seeds an account with `--resources` resources, one
site and a policy per resource granting them to a group of `--clients` users, and reports:

  (a) idle client sockets held by one daphne process: ramps to `--sockets` joined client
      sockets (`--idle-per-account` per account, in accounts of their own whose user sees
      `--idle-resources` resources; see README "Benchmarks" for why not all in one), reading the
      daphne process's VmRSS from /proc at checkpoints; RSS per socket = growth over the first
      checkpoint divided by the sockets added since;
  (b) create_flow → flow_created latency with one bench gateway online that answers every
      `authorize_flow` with `flow_authorized`: `--flows` flows from `--flow-clients` clients, each
      client sequential (p50/p90/p99/max);
  (c) a policy change (deleting one resource's policy through the service) → the time until the
      last of `--clients` joined clients (each seeing all `--resources` resources) received its
      `resource_deleted`, `--changes` times.

Everything (daphne, PostgreSQL, Redis and this client) shares the machine's cores, so the numbers
are a floor for one process on this machine, not a capacity figure for a server. Devices behave
like connlib: V1 frames, heartbeat every 30 s, no WebSocket compression.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

CLIENT_UA = "Mac OS/14.5 (arm64) connlib/1.4.0"
GATEWAY_UA = "Linux/24.04 gateway/1.4.17"
HEARTBEAT_SECONDS = 30.0
# (a) reports the daphne RSS at these socket counts (and at --sockets).
CHECKPOINTS = (1000, 2000, 5000, 10000, 15000, 20000, 30000, 50000)


# ------------------------------------------------------------------ environment and Django


def configure_environment() -> dict[str, str]:
    """The settings shared by this process (seeding) and the daphne it starts."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            raise SystemExit(
                f"{name} is not set: run through `make bench` or "
                "`python -m firezone.devservices exec -- python bench/sockets.py`"
            )
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.update(
        DEBUG="false",  # DEBUG keeps every SQL query in memory: not what production runs
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="firezone.settings",
        PYTHONUNBUFFERED="1",
        FIREZONE_TESTING="false",
    )
    return dict(os.environ)


def setup_django() -> None:
    import django

    django.setup()


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE (the daphne child inherits it); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    except (ValueError, OSError):  # not root: as far as the hard limit allows
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------ seed data


@dataclass
class Seed:
    idle_client_tokens: list[str]  # one per idle account
    client_tokens: list[str]
    site_token: str
    site_id: str
    resource_ids: list[str]
    admin_actor_id: Any
    policy_ids: dict[str, Any]  # resource id -> its policy id


def _users(account: Any, provider: Any, count: int) -> list[Any]:
    from accounts.models import Actor, AuthIdentity
    from accounts.tests.factories import ActorFactory, IdentityFactory

    actors = Actor.objects.bulk_create(ActorFactory.build_batch(count, account=account))
    AuthIdentity.objects.bulk_create(
        [IdentityFactory.build(actor=a, account=account, provider=provider) for a in actors]
    )
    return actors


def _grant(account: Any, site: Any, actors: list[Any], n_resources: int) -> list[Any]:
    """`n_resources` DNS resources of `site`, each with a policy for a group of `actors`."""
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
                account=account, address=f"svc{i}.bench.example.com", name=f"svc-{i}"
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
    from django.db import transaction
    from django.utils import timezone

    from accounts.services.tokens import token_create
    from accounts.tests.factories import (
        AccountFactory,
        ActorFactory,
        IdentityFactory,
        ProviderFactory,
    )
    from gateways.tests.factories import SiteFactory
    from resources.models import Policy

    call_command("migrate", verbosity=0)
    expires_at = timezone.now() + timedelta(days=7)
    config = {"clients_upstream_dns": [{"protocol": "ip_port", "address": "1.1.1.1"}]}

    def client_token(actor: Any) -> str:
        identity = actor.identities.first()
        issued = token_create(
            type="client", account=actor.account, actor=actor, identity=identity,
            expires_at=expires_at,
        )  # fmt: skip
        return issued.encoded

    with transaction.atomic():
        # The accounts of the idle sockets: one user each, seeing `--idle-resources` resources.
        idle_tokens = []
        for n in range(-(-args.sockets // args.idle_per_account) if "idle" in args.parts else 0):
            idle_account = AccountFactory(slug=f"bench_idle_{n}", config=config)
            idle_provider = ProviderFactory(account=idle_account)
            idle_site = SiteFactory(account=idle_account, name="idle-site")
            [idle_user] = _users(idle_account, idle_provider, 1)
            _grant(idle_account, idle_site, [idle_user], args.idle_resources)
            idle_tokens.append(client_token(idle_user))

        # The measured account: `--clients` users seeing all `--resources` resources.
        account = AccountFactory(slug="bench", config=config)
        provider = ProviderFactory(account=account)
        site = SiteFactory(account=account, name="bench-site")
        admin = ActorFactory(account=account, admin=True)
        IdentityFactory(actor=admin, account=account, provider=provider)
        users = _users(account, provider, max(args.clients, args.flow_clients))
        resources = _grant(account, site, users, args.resources)
        tokens = [client_token(u) for u in users]
        site_token = token_create(type="gateway_group", account=account, gateway_group=site)
    policies = dict(
        Policy.objects.filter(account=account).values_list("resource_id", "id").iterator()
    )
    return Seed(
        idle_client_tokens=idle_tokens,
        client_tokens=tokens,
        site_token=site_token.encoded,
        site_id=str(site.pk),
        resource_ids=[str(r.pk) for r in resources],
        admin_actor_id=admin.pk,
        policy_ids={str(k): v for k, v in policies.items()},
    )


def delete_policy(seed: Seed, resource_id: str) -> None:
    """The measured change: an admin deletes the policy of one resource (through the service)."""
    from django.db import connections

    from accounts.models import Actor
    from accounts.tests.factories import subject_for
    from resources.services.policies import policy_delete

    try:
        admin = Actor.objects.select_related("account").get(pk=seed.admin_actor_id)
        policy_delete(subject=subject_for(admin), policy=seed.policy_ids[resource_id])
    finally:
        connections.close_all()


# ------------------------------------------------------------------ the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Daphne:
    port: int
    process: subprocess.Popen
    log_path: Path

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def daphne(env: dict[str, str], workdir: Path, name: str) -> Iterator[Daphne]:
    """One daphne process with the production socket options; a deep listen backlog so a
    burst of connects is not throttled by SYN retries."""
    port = _free_port()
    log_path = workdir / f"daphne-{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "daphne",
                "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=4096",
                "--websocket_timeout", "-1", "--ping-interval", "25", "--ping-timeout", "30",
                "-v", "0", "firezone.asgi:application",
            ],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"daphne exited:\n{log_path.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("daphne did not start") from None
                time.sleep(0.05)
        yield Daphne(port, proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def redis_used_memory() -> int | None:
    import redis

    try:
        return int(redis.Redis.from_url(os.environ["REDIS_URL"]).info("memory")["used_memory"])
    except Exception:
        return None


# ------------------------------------------------------------------ devices


def public_key() -> str:
    import base64

    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Device:
    """A connlib-like socket: V1 frames, integer refs, a reader that routes frames."""

    ws: Any
    topic: str
    next_ref: int = 0
    on_push: Callable[[Device, dict[str, Any], float], None] | None = None
    replies: dict[int, asyncio.Future] = field(default_factory=dict)
    pushes: dict[str, asyncio.Future] = field(default_factory=dict)  # first push of an event
    reader: asyncio.Task | None = None
    id: str | None = None

    async def send(self, event: str, payload: Any, topic: str | None = None) -> int:
        ref, self.next_ref = self.next_ref, self.next_ref + 1
        frame = {"topic": topic or self.topic, "event": event, "payload": payload, "ref": ref}
        await self.ws.send(json.dumps(frame))
        return ref

    async def request(self, event: str, payload: Any, timeout: float = 60) -> dict[str, Any]:
        ref = await self.send(event, payload)
        future = self.replies[ref] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self.replies.pop(ref, None)

    def expect_push(self, event: str) -> asyncio.Future:
        future = self.pushes.get(event)
        if future is None:
            future = self.pushes[event] = asyncio.get_running_loop().create_future()
        return future

    async def read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                event = frame.get("event")
                if event == "phx_reply":
                    future = self.replies.get(frame.get("ref"))
                    if future is not None and not future.done():
                        future.set_result(frame["payload"])
                    continue
                future = self.pushes.get(event)
                if future is None:
                    future = self.pushes[event] = asyncio.get_running_loop().create_future()
                if not future.done():
                    future.set_result(frame["payload"])
                if self.on_push is not None:
                    self.on_push(self, frame, now)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


async def open_device(
    port: int, path: str, params: dict[str, str], user_agent: str, topic: str
) -> Device:
    from urllib.parse import urlencode

    from websockets.asyncio.client import connect

    ws = await connect(
        f"ws://127.0.0.1:{port}{path}?{urlencode(params)}",
        user_agent_header=user_agent,
        open_timeout=120,
        ping_interval=None,  # connlib sends Phoenix heartbeats, not WebSocket pings
        compression=None,
        max_size=None,
        close_timeout=1,
    )
    device = Device(ws=ws, topic=topic)
    device.reader = asyncio.create_task(device.read())
    return device


async def join(device: Device, *, wait_init: float) -> bool:
    """phx_join; True once joined (and `init` arrived, when `wait_init` > 0)."""
    init = device.expect_push("init")
    reply = await device.request("phx_join", {})
    if reply.get("status") != "ok":
        raise RuntimeError(f"join refused: {reply}")
    if wait_init > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(init), wait_init)
    return init.done()


async def open_client(port: int, token: str, *, wait_init: float) -> tuple[Device, bool]:
    params = {
        "token": token,
        "external_id": secrets.token_hex(32),
        "name": "bench",
        "public_key": public_key(),
    }
    started = time.perf_counter()
    device = await open_device(port, "/client/websocket", params, CLIENT_UA, "client")
    connected = time.perf_counter()
    try:
        got_init = await join(device, wait_init=wait_init)
    except BaseException:
        await device.close()
        raise
    TIMINGS["connect"].append(connected - started)
    if got_init:
        TIMINGS["join+init"].append(time.perf_counter() - connected)
    return device, got_init


# Seconds per client: the WebSocket upgrade (authentication + upsert) and join → init.
TIMINGS: dict[str, list[float]] = {"connect": [], "join+init": []}


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
    return "; ".join(parts)


async def heartbeats(devices: list[Device]) -> None:
    """Every device sends a Phoenix heartbeat every 30 s, spread over the period."""
    while True:
        batch = list(devices)
        if not batch:
            await asyncio.sleep(1)
            continue
        pause = HEARTBEAT_SECONDS / len(batch)
        start = time.monotonic()
        for i, device in enumerate(batch):
            with contextlib.suppress(Exception):
                await device.send("heartbeat", {}, topic="phoenix")
            lag = start + (i + 1) * pause - time.monotonic()
            if lag > 0:
                await asyncio.sleep(lag)


# Connect attempts that failed and were retried (a device reconnects after a failed connect).
RETRIED: list[str] = []


async def open_many(
    indexes: range, opener: Callable[[int], Any], concurrency: int, *, attempts: int = 3
) -> tuple[list[Any], list[str]]:
    """Open a device per index with at most `concurrency` handshakes in flight; a failed one is
    retried after a second (like a device), up to `attempts` times."""
    semaphore = asyncio.Semaphore(concurrency)
    opened: list[Any] = []
    errors: list[str] = []

    async def one(index: int) -> None:
        for attempt in range(attempts):
            if len(errors) > max(20, len(indexes) // 100):
                return  # the server is refusing: stop hammering it
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

    await asyncio.gather(*(one(i) for i in indexes))
    return opened, errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ------------------------------------------------------------------ (a) idle sockets


async def bench_idle(args: argparse.Namespace, server: Daphne, seed: Seed) -> dict[str, Any]:
    print(f"\n== (a) idle client sockets on one daphne process (up to {args.sockets}) ==")
    print(
        f"   {args.idle_per_account} sockets per account, each client sees"
        f" {args.idle_resources} resources; heartbeat every 30 s"
    )
    devices: list[Device] = []
    inits = 0
    hb = asyncio.create_task(heartbeats(devices))

    async def opener(index: int) -> Device:
        nonlocal inits
        token = seed.idle_client_tokens[index // args.idle_per_account]
        device, got_init = await open_client(server.port, token, wait_init=30)
        inits += got_init
        devices.append(device)
        return device

    warm = min(100, args.sockets)
    _, errors = await open_many(range(warm), opener, args.concurrency)
    await asyncio.sleep(2)
    base_n, base_rss, base_redis = len(devices), server.rss_kb(), redis_used_memory()
    rows = [(base_n, base_rss, None, None, 0.0)]
    print(
        f"   {'sockets':>8} {'daphne RSS':>11} {'RSS/socket':>11} {'Redis/socket':>13}"
        f" {'connects/s':>11}"
    )
    print(f"   {base_n:>8} {base_rss / 1024:>9.0f}MB {'(baseline)':>11}")
    checkpoints = sorted(
        {
            c
            for c in (1000, 2000, 5000, 10000, 15000, 20000, 30000, 50000)
            if warm < c < args.sockets
        }
        | {args.sockets}
    )
    for target in checkpoints:
        if errors and len(errors) > max(20, target // 100):
            break
        started = time.perf_counter()
        before = len(devices)
        _, new_errors = await open_many(range(before, target), opener, args.concurrency)
        errors += new_errors
        rate = (len(devices) - before) / (time.perf_counter() - started)
        await asyncio.sleep(3)  # let joins, presence and the heartbeats settle
        rss, redis_mem = server.rss_kb(), redis_used_memory()
        added = len(devices) - base_n
        per = (rss - base_rss) / added if added else float("nan")
        per_redis = (
            (redis_mem - base_redis) / added / 1024
            if added and redis_mem is not None and base_redis is not None
            else float("nan")
        )
        rows.append((len(devices), rss, per, per_redis, rate))
        print(
            f"   {len(devices):>8} {rss / 1024:>9.0f}MB {per:>9.1f}KB {per_redis:>11.1f}KB"
            f" {rate:>11.0f}"
        )
        print(f"            ({timings_line()})")
        if server.process.poll() is not None:
            print("   daphne died:\n" + server.log_tail())
            break
    hb.cancel()
    alive = sum(1 for d in devices if d.reader is not None and not d.reader.done())
    print(
        f"   reached {len(devices)} joined sockets of {args.sockets} ({alive} still open,"
        f" {inits} got init, {len(errors)} failed)"
    )
    for error in sorted(set(errors))[:5]:
        print(f"     e.g. {error}")
    await asyncio.gather(*(d.close() for d in devices))
    last = rows[-1]
    return {
        "sockets": len(devices),
        "target": args.sockets,
        "rss_mb": round(last[1] / 1024),
        "rss_per_socket_kb": None if last[2] is None else round(last[2], 1),
        "redis_per_socket_kb": None if last[3] is None else round(last[3], 1),
        "failed": len(errors),
    }


# ------------------------------------------------------------------ (b) create_flow


async def open_gateway(server: Daphne, seed: Seed) -> Device:
    params = {
        "token": seed.site_token,
        "external_id": secrets.token_hex(32),
        "name": "bench-gw",
        "public_key": public_key(),
    }
    gateway = await open_device(server.port, "/gateway/websocket", params, GATEWAY_UA, "gateway")

    def answer(device: Device, frame: dict[str, Any], _: float) -> None:
        if frame.get("event") == "authorize_flow":
            ref = frame["payload"]["ref"]
            asyncio.get_running_loop().create_task(device.send("flow_authorized", {"ref": ref}))

    gateway.on_push = answer
    await join(gateway, wait_init=30)
    return gateway


async def bench_flows(args: argparse.Namespace, server: Daphne, seed: Seed) -> dict[str, Any]:
    print(
        f"\n== (b) create_flow -> flow_created, 1 gateway online: {args.flows} flows from one"
        f" client, then {args.flows} from {args.flow_clients} clients at once (each sequential) =="
    )
    gateway = await open_gateway(server, seed)
    await asyncio.sleep(1)  # presence of the gateway
    clients: list[Device] = []
    for token in seed.client_tokens[: args.flow_clients]:
        device, _ = await open_client(server.port, token, wait_init=60)
        clients.append(device)
    waiting: dict[tuple[int, str], asyncio.Future] = {}

    def route(device: Device, frame: dict[str, Any], now: float) -> None:
        event, payload = frame.get("event"), frame.get("payload") or {}
        if event in ("flow_created", "flow_creation_failed"):
            future = waiting.pop((id(device), payload.get("resource_id")), None)
            if future is not None and not future.done():
                future.set_result((event, payload, now))

    async def run(device: Device, count: int, out: dict[str, Any]) -> None:
        device.on_push = route
        for _ in range(count):
            resource_id = random.choice(seed.resource_ids)
            future = asyncio.get_running_loop().create_future()
            waiting[(id(device), resource_id)] = future
            started = time.perf_counter()
            await device.send(
                "create_flow", {"resource_id": resource_id, "connected_gateway_ids": []}
            )
            try:
                event, payload, at = await asyncio.wait_for(future, 10)
            except TimeoutError:
                waiting.pop((id(device), resource_id), None)
                out["timeouts"] += 1
                continue
            if event == "flow_created":
                out["latencies"].append((at - started) * 1000)
            else:
                reason = payload.get("reason", "?")
                out["failures"][reason] = out["failures"].get(reason, 0) + 1

    async def measure(devices: list[Device], label: str) -> dict[str, Any]:
        out: dict[str, Any] = {"latencies": [], "timeouts": 0, "failures": {}}
        per_client = max(1, args.flows // len(devices))
        started = time.perf_counter()
        await asyncio.gather(*(run(d, per_client, out) for d in devices))
        elapsed = time.perf_counter() - started
        latencies = out.pop("latencies")
        if not latencies:
            print(f"   {label}: no flow_created ({out})")
            return {"flows": 0, **out}
        result = {
            "flows": len(latencies),
            "p50_ms": round(pct(latencies, 50), 1),
            "p90_ms": round(pct(latencies, 90), 1),
            "p99_ms": round(pct(latencies, 99), 1),
            "max_ms": round(max(latencies), 1),
            "flows_per_s": round(len(latencies) / elapsed, 1),
            **out,
        }
        print(
            f"   {label}: {result['flows']} flows: p50 {result['p50_ms']} ms,"
            f" p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms;"
            f" {result['flows_per_s']} flows/s; timeouts {out['timeouts']};"
            f" failures {out['failures'] or 0}"
        )
        return result

    await asyncio.gather(
        *(run(c, 5, {"latencies": [], "timeouts": 0, "failures": {}}) for c in clients)
    )  # warm-up
    results = {
        "one_client": await measure(clients[:1], "1 client"),
        "parallel": await measure(clients, f"{len(clients)} clients"),
        "flow_clients": len(clients),
    }
    await asyncio.gather(*(d.close() for d in [*clients, gateway]))
    return results


# ------------------------------------------------------------------ (c) policy change fan-out


async def bench_fanout(args: argparse.Namespace, server: Daphne, seed: Seed) -> dict[str, Any]:
    print(
        f"\n== (c) policy change -> resource_deleted on {args.clients} joined clients"
        f" (each sees {args.resources} resources) =="
    )
    rss_before = server.rss_kb()
    tokens = seed.client_tokens[: args.clients]
    inits = 0

    async def opener(index: int) -> Device:
        nonlocal inits
        device, got_init = await open_client(server.port, tokens[index], wait_init=120)
        inits += got_init
        return device

    started = time.perf_counter()
    clients, errors = await open_many(range(len(tokens)), opener, args.concurrency)
    join_s = time.perf_counter() - started
    hb = asyncio.create_task(heartbeats(clients))
    await asyncio.sleep(3)
    rss_after = server.rss_kb()
    per_socket = (rss_after - rss_before) / max(1, len(clients))
    print(f"   {timings_line()}")
    print(
        f"   {len(clients)} clients joined in {join_s:.1f} s ({inits} got init, {len(errors)}"
        f" failed); daphne RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB"
        f" ({per_socket:.0f} KB per client socket)"
    )
    runs: list[dict[str, Any]] = []
    for resource_id in random.sample(seed.resource_ids, min(args.changes, len(seed.resource_ids))):
        arrivals: list[float] = []
        done = asyncio.get_running_loop().create_future()

        def route(
            device: Device,
            frame: dict[str, Any],
            now: float,
            rid: str = resource_id,
            arrivals: list[float] = arrivals,
            done: asyncio.Future = done,
        ) -> None:
            if frame.get("event") == "resource_deleted" and frame.get("payload") == rid:
                arrivals.append(now)
                if len(arrivals) == len(clients) and not done.done():
                    done.set_result(None)

        for device in clients:
            device.on_push = route
        t0 = time.perf_counter()
        await asyncio.to_thread(delete_policy, seed, resource_id)
        committed = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, args.fanout_timeout)
        if arrivals:
            last, first = max(arrivals) - t0, min(arrivals) - t0
            median = statistics.median(arrivals) - t0
            runs.append(
                {
                    "received": len(arrivals),
                    "first_ms": round(first * 1000),
                    "p50_ms": round(median * 1000),
                    "last_ms": round(last * 1000),
                    "service_ms": round((committed - t0) * 1000),
                }
            )
            print(
                f"   change {len(runs)}: {len(arrivals)}/{len(clients)} received; first"
                f" {first * 1000:.0f} ms, median {median * 1000:.0f} ms, last {last * 1000:.0f} ms"
                f" after the service call started (commit took {(committed - t0) * 1000:.0f} ms)"
            )
        else:
            print(f"   change: no client received resource_deleted within {args.fanout_timeout} s")
            runs.append({"received": 0})
        await asyncio.sleep(2)
    hb.cancel()
    await asyncio.gather(*(d.close() for d in clients))
    return {
        "clients": len(clients),
        "join_s": round(join_s, 1),
        "rss_per_client_kb": round(per_socket),
        "runs": runs,
    }


# ------------------------------------------------------------------ main


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=20000, help="(a) idle sockets to ramp to")
    parser.add_argument(
        "--idle-resources", type=int, default=10, help="(a) resources per idle client"
    )
    parser.add_argument("--resources", type=int, default=1000, help="resources (and policies)")
    parser.add_argument("--clients", type=int, default=1000, help="(c) joined clients")
    parser.add_argument(
        "--idle-per-account", type=int, default=100, help="(a) idle sockets per account"
    )
    parser.add_argument("--flows", type=int, default=1000, help="(b) measured flows")
    parser.add_argument("--flow-clients", type=int, default=10, help="(b) clients creating flows")
    parser.add_argument("--changes", type=int, default=2, help="(c) policy changes to time")
    parser.add_argument("--fanout-timeout", type=float, default=600.0)
    parser.add_argument("--concurrency", type=int, default=16, help="handshakes in flight")
    parser.add_argument(
        "--only", choices=("idle", "flows", "fanout"), action="append", help="run only these parts"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.parts = set(args.only or ("idle", "flows", "fanout"))
    return args


async def run(args: argparse.Namespace, env: dict[str, str], seed: Seed, tmp: Path) -> dict:
    parts = args.parts
    results: dict[str, Any] = {}
    if "idle" in parts:
        # A daphne of its own: (b) and (c) start from a fresh process.
        with daphne(env, tmp, "idle") as server:
            results["idle"] = await bench_idle(args, server, seed)
    if parts & {"flows", "fanout"}:
        with daphne(env, tmp, "flows") as server:
            if "flows" in parts:
                results["flows"] = await bench_flows(args, server, seed)
            if "fanout" in parts:
                results["fanout"] = await bench_fanout(args, server, seed)
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    env = configure_environment()
    limit = raise_fd_limit(args.sockets * 2 + 4096)
    print(f"machine: {machine()}; open files limit {limit}")
    setup_django()
    started = time.perf_counter()
    seeded = seed(args)
    print(
        f"seeded {args.resources} resources + policies, {len(seeded.client_tokens)} users in"
        f" {time.perf_counter() - started:.1f} s"
    )
    with tempfile.TemporaryDirectory(prefix="fz-bench-") as tmp:
        results = asyncio.run(run(args, env, seeded, Path(tmp)))
    print("\n== summary ==")
    idle, flows, fanout = results.get("idle"), results.get("flows"), results.get("fanout")
    if idle:
        print(
            f"(a) {idle['sockets']}/{idle['target']} idle sockets on one daphne:"
            f" {idle['rss_mb']} MB RSS, {idle['rss_per_socket_kb']} KB per socket"
            f" (+{idle['redis_per_socket_kb']} KB in Redis)"
        )
    if flows:
        one, many = flows["one_client"], flows["parallel"]
        print(
            f"(b) create_flow -> flow_created: one client p50 {one.get('p50_ms')} ms,"
            f" p99 {one.get('p99_ms')} ms; {flows['flow_clients']} clients at once"
            f" p50 {many.get('p50_ms')} ms, p99 {many.get('p99_ms')} ms"
            f" ({many.get('flows_per_s')} flows/s)"
        )
    if fanout:
        lasts = [r["last_ms"] for r in fanout["runs"] if r.get("last_ms") is not None]
        received = [r["received"] for r in fanout["runs"]]
        print(
            f"(c) policy change -> last of {fanout['clients']} clients: "
            + (", ".join(f"{ms} ms" for ms in lasts) or "none received")
            + f" (received {received})"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": machine(), "args": vars(args) | {"json": str(args.json)}, **results},
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
