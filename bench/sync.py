"""Directory sync against a big fake directory: wall time, queries, peak RSS, pushes (issue 16).

    make bench-sync
    make bench-sync ARGS="--clients 200 --profile"
    python -m firezone.devservices exec -- python bench/sync.py [--users 10000] [--groups 1000]
        [--memberships-per-user 5] [--clients 1000] [--concurrency 64] [--profile] [--json F]

It needs DATABASE_URL and REDIS_URL (devservices gives throwaway ones) and migrates that
database. The directory is a fake Microsoft Graph (`/v1.0/users`, `/v1.0/groups`,
`/v1.0/groups/<id>/transitiveMembers/microsoft.graph.user`) served over real HTTP by a process
of its own, generated deterministically: `--users` users, `--groups` groups, each user in
`--memberships-per-user` groups (10,000 / 1,000 / 50,000 by default; group 0 starts empty),
paged like Graph (999 items a page, absolute `@odata.nextLink`). A Microsoft Entra provider
points at it (`MS_GRAPH_API_BASE`), and `directory_sync.services.runs.provider_sync_run` runs in
this process, three times:

  first      the empty account reads the whole directory;
  no-change  (after an ANALYZE, as autovacuum would run after the bulk load) the same
             directory again: it must write nothing (INSERT/UPDATE/DELETE statements
             counted with `connection.execute_wrapper`, except the provider's own bookkeeping
             row in accounts_authprovider, and no new change-log rows);
  churn      5 %: 5 % of the users removed, 5 % added, 5 % renamed; 2.5 % of the groups removed,
             added and renamed; 3 % of the users move one membership to a new group, and the
             `--clients` users with a client join group 0 (deletions stay under the 25 % breaker).

Before the churn, group 0 gets a policy granting one resource, `--clients` synced users get a
client token each, a real daphne starts (bench/sockets.py's, production socket options) and a
process of its own connects and joins those clients (bench/sockets.py's client). The churn sync
moves them into group 0: the time from the sync's commit (an on_commit hook registered at its
first write, so it runs before the hooks that publish) until the last client received
`resource_created_or_updated` for that resource. Both times are CLOCK_MONOTONIC.

Per sync: wall time (and its fetch / database split from the run's log line), SQL queries,
write statements, change-log rows, and the peak RSS of this process so far
(`getrusage(RUSAGE_SELF).ru_maxrss`; PostgreSQL, Redis, daphne, the fake directory and the
client process are separate processes). `--profile` prints the top of a cProfile of each sync.

Targets (issue 16): first sync ≤ 60 s, no-change re-sync ≤ 10 s with no writes, peak RSS ≤ 300
MB, pushes to the last client ≤ 2 s after the sync commits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import multiprocessing
import pstats
import re
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench._env import configure_environment  # noqa: E402

now = time.monotonic  # CLOCK_MONOTONIC: comparable between processes
TOKEN = "BENCH_GRAPH_TOKEN"  # the fake directory's bearer token
PAGE_SIZE = 999  # Graph's largest $top, what the Entra adapter asks for
NAMESPACE = uuid.UUID("6f1c2d3e-0000-4000-8000-000000000016")
TARGETS = {"first_s": 60.0, "nochange_s": 10.0, "rss_mb": 300.0, "push_last_s": 2.0}


# ------------------------------------------------------------------ the fake directory


def _uid(kind: str, index: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}-{index}"))


@dataclass(frozen=True)
class Shape:
    users: int
    groups: int
    per_user: int
    clients: int

    # The churn of version 1 (5 %).
    @property
    def users_churned(self) -> int:
        return self.users // 20

    @property
    def groups_churned(self) -> int:
        return self.groups // 40

    @property
    def moves(self) -> int:
        return self.users * 3 // 100


def directory_data(shape: Shape, version: int) -> dict[str, Any]:
    """Users (id, name), groups (id, name) and each group's member ids, of `version` (0: the
    initial directory, 1: after the churn). Group 0 is the policy's group: empty at first, the
    client users join it in version 1."""
    n, g, churn = shape.users, shape.groups, shape.users_churned
    user_ids = list(range(n))
    group_ids = list(range(g))
    renamed_users: set[int] = set()
    renamed_groups: set[int] = set()
    if version:
        user_ids = list(range(n - churn)) + list(range(n, n + churn))
        renamed_users = set(range(shape.clients, shape.clients + churn))
        gc = shape.groups_churned
        group_ids = list(range(g - gc)) + list(range(g, g + gc))
        renamed_groups = set(range(g - 3 * gc, g - 2 * gc))
    present = set(group_ids)
    members: dict[int, list[int]] = {gid: [] for gid in group_ids}
    move_from, move_to = 2 * shape.clients, 2 * shape.clients + shape.moves
    for i in user_ids:
        for k in range(shape.per_user):
            gid = (i * 7 + k * 211) % (g - 1) + 1
            if version and k == 0 and move_from <= i < move_to:
                gid = g + i % shape.groups_churned  # moved to a new group
            if gid in present:
                members[gid].append(i)
        if version and i < shape.clients:
            members[0].append(i)
    return {
        "users": [
            (_uid("user", i), f"User {i:05d}" + (" (renamed)" if i in renamed_users else ""), i)
            for i in user_ids
        ],
        "groups": [
            (_uid("group", j), f"Group {j:04d}" + (" (renamed)" if j in renamed_groups else ""))
            for j in group_ids
        ],
        "members": {_uid("group", j): [_uid("user", i) for i in m] for j, m in members.items()},
    }


class FakeGraph:
    """Pre-rendered Graph pages of the current version; thread-safe by replacing dicts."""

    def __init__(self, shape: Shape, base_url: str) -> None:
        self.shape = shape
        self.base_url = base_url
        self.pages: dict[str, list[bytes]] = {}
        self.requests = 0

    def load(self, version: int) -> None:
        data = directory_data(self.shape, version)
        users = [
            {
                "id": uid,
                "accountEnabled": True,
                "displayName": name,
                "givenName": "User",
                "surname": f"{i:05d}",
                "mail": f"user{i}@bench.example.com",
                "userPrincipalName": f"user{i}@bench.example.com",
            }
            for uid, name, i in data["users"]
        ]
        groups = [{"id": gid, "displayName": name} for gid, name in data["groups"]]
        pages = {
            "/v1.0/users": self._paged("/v1.0/users", users),
            "/v1.0/groups": self._paged("/v1.0/groups", groups),
        }
        for gid, member_ids in data["members"].items():
            path = f"/v1.0/groups/{gid}/transitiveMembers/microsoft.graph.user"
            items = [
                {"@odata.type": "#microsoft.graph.user", "id": uid, "accountEnabled": True}
                for uid in member_ids
            ]
            pages[path] = self._paged(path, items)
        self.pages = pages
        self.requests = 0

    def _paged(self, path: str, items: list[dict[str, Any]]) -> list[bytes]:
        out = []
        for offset in range(0, max(len(items), 1), PAGE_SIZE):
            body: dict[str, Any] = {"value": items[offset : offset + PAGE_SIZE]}
            if offset + PAGE_SIZE < len(items):
                following = offset + PAGE_SIZE
                body["@odata.nextLink"] = (
                    f"{self.base_url}{path}?$top={PAGE_SIZE}&$skiptoken={following}"
                )
            out.append(json.dumps(body).encode())
        return out


def _fake_main(conn: Any, shape: Shape) -> None:
    """The fake directory's process: answers Graph GETs; `POST /_bench/version/<n>` switches
    the data, `GET /_bench/requests` counts the requests since."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            version = int(self.path.rsplit("/", 1)[1])
            fake.load(version)
            self._send(200, b"{}")

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/_bench/requests":
                self._send(200, json.dumps({"requests": fake.requests}).encode())
                return
            fake.requests += 1
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, b'{"error": {"code": "InvalidAuthenticationToken", '
                                b'"message": "Access token is empty."}}')  # fmt: skip
                return
            pages = fake.pages.get(parts.path)
            if pages is None:
                self._send(404, b'{"error": {"code": "Request_ResourceNotFound", '
                                b'"message": "Resource does not exist."}}')  # fmt: skip
                return
            offset = int(parse_qs(parts.query).get("$skiptoken", ["0"])[0])
            self._send(200, pages[offset // PAGE_SIZE])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake = FakeGraph(shape, f"http://127.0.0.1:{server.server_address[1]}")
    fake.load(0)
    conn.send(fake.base_url)
    server.serve_forever()


class FakeDirectory:
    def __init__(self, shape: Shape) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=_fake_main, args=(child, shape), daemon=True)
        self.process.start()
        self.url: str = parent.recv()

    def _call(self, method: str, path: str) -> dict[str, Any]:
        import requests

        response = requests.request(method, self.url + path, timeout=60)
        response.raise_for_status()
        return response.json()

    def version(self, n: int) -> None:
        self._call("POST", f"/_bench/version/{n}")

    def requests(self) -> int:
        return int(self._call("GET", "/_bench/requests")["requests"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


# ------------------------------------------------------------------ the clients' process


def _clients_main(
    conn: Any, port: int, tokens: list[str], marker: str, concurrency: int, timeout: float
) -> None:
    """Connect and join a client per token; report "ready"; then the arrival time of each
    client's `resource_created_or_updated` naming `marker`, up to `timeout` s after "go"."""
    from bench.sockets import abort_all, heartbeats, open_client, open_many, timings_line

    async def run() -> None:
        started = now()

        async def opener(index: int) -> Any:
            return await open_client(port, tokens[index], "sync", index, wait_init=60)

        devices, errors = await open_many(range(len(tokens)), opener, concurrency)
        hb = asyncio.create_task(heartbeats(devices))
        arrivals: dict[int, float] = {}
        needle = marker.encode()
        done = asyncio.get_running_loop().create_future()

        def route(device: Any, event: str | None, data: bytearray, at: float) -> None:
            if event == "resource_created_or_updated" and needle in data:
                arrivals.setdefault(id(device), at)
                if len(arrivals) == len(devices) and not done.done():
                    done.set_result(None)

        for device in devices:
            device.on_push = route
        conn.send(
            {
                "joined": len(devices),
                "failed": len(errors),
                "errors": sorted(set(errors))[:3],
                "join_s": round(now() - started, 1),
                "timings": timings_line(),
            }
        )
        await asyncio.to_thread(conn.recv)  # "go": the sync starts
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(done)
        hb.cancel()
        conn.send(sorted(arrivals.values()))
        abort_all(devices)

    asyncio.run(run())


# ------------------------------------------------------------------ measuring a sync


PROVIDERS_TABLE = "accounts_authprovider"  # the run's own bookkeeping row, not the sync's writes
WRITE = re.compile(r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


@dataclass
class Meter:
    """Counts SQL statements and writes by table (not keeping the SQL: DEBUG-free memory); at the
    first write of the sync's transaction registers an on_commit hook marking its commit."""

    queries: int = 0
    writes: dict[str, int] = field(default_factory=dict)
    commit: float | None = None
    _hooked: bool = False

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        from django.db import connection, transaction

        self.queries += 1
        match = WRITE.match(sql)
        if match:
            table = match.group(2)
            self.writes[table] = self.writes.get(table, 0) + 1
            if not self._hooked and table != PROVIDERS_TABLE and connection.in_atomic_block:
                self._hooked = True
                transaction.on_commit(self._mark)
        return execute(sql, params, many, context)

    def _mark(self) -> None:
        self.commit = now()

    @property
    def sync_writes(self) -> int:
        return sum(n for table, n in self.writes.items() if table != PROVIDERS_TABLE)


class RunLog(logging.Handler):
    """The run's own "directory synced (… fetch Xs, db Ys …)" line: its fetch / db split."""

    def __init__(self) -> None:
        super().__init__()
        self.split: tuple[float, float] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if "directory synced" in record.msg and isinstance(record.args, tuple):
            fetch, db = record.args[4], record.args[5]
            assert isinstance(fetch, float) and isinstance(db, float)
            self.split = (fetch, db)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def changelog_rows() -> int:
    from firezone.models import ChangeLog

    return ChangeLog.objects.count()


def timed_sync(label: str, provider_id: Any, fake: FakeDirectory, profile: bool) -> dict:
    from django.db import connection

    from accounts.models import AuthProvider
    from directory_sync.services.runs import provider_sync_run

    provider = AuthProvider.objects.select_related("account").get(pk=provider_id)
    log = RunLog()
    runs_logger = logging.getLogger("directory_sync.services.runs")
    runs_logger.addHandler(log)
    runs_logger.setLevel(logging.INFO)
    before = changelog_rows()
    requests_before = fake.requests()
    meter = Meter()
    profiler = cProfile.Profile() if profile else None
    started = now()
    with connection.execute_wrapper(meter):
        if profiler:
            profiler.enable()
        run = provider_sync_run(provider=provider)
        if profiler:
            profiler.disable()
    wall = now() - started
    runs_logger.removeHandler(log)
    assert run.outcome == "synced", (label, run)
    result = run.result
    out = {
        "label": label,
        "wall_s": round(wall, 2),
        "fetch_s": round(log.split[0], 2) if log.split else None,
        "db_s": round(log.split[1], 2) if log.split else None,
        "http_requests": fake.requests() - requests_before,
        "queries": meter.queries,
        "writes": meter.sync_writes,
        "writes_by_table": dict(sorted(meter.writes.items())),
        "changelog_rows": changelog_rows() - before,
        "peak_rss_mb": round(peak_rss_mb()),
        "commit": meter.commit,
        "result": {k: v for k, v in vars(result).items() if v},
    }
    print(
        f"   {label}: {wall:.2f} s (fetch {out['fetch_s']} s, db {out['db_s']} s;"
        f" {out['http_requests']} HTTP requests), {meter.queries} queries, {out['writes']}"
        f" writes {out['writes_by_table']}, {out['changelog_rows']} change-log rows,"
        f" peak RSS {out['peak_rss_mb']} MB\n     {out['result']}"
    )
    if profiler:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(30)
        print(stream.getvalue())
    return out


# ------------------------------------------------------------------ setup


def setup_django(graph_url: str) -> dict[str, str]:
    env = configure_environment(
        make_target="bench-sync",
        script="sync.py",
        allowed_hosts="127.0.0.1,localhost",
        MS_GRAPH_API_BASE=graph_url,
        PYTHONUNBUFFERED="1",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def analyze() -> None:
    """Fresh planner statistics after the bulk first sync, as autovacuum would give within a
    minute; without them the no-change sync's "Everyone" check takes seconds on a bad plan."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def seed() -> dict[str, Any]:
    """The account, its Entra provider (pointing at the fake), a site and the resource that
    group 0's policy will grant."""
    from django.db import transaction

    from accounts.tests.factories import AccountFactory, ProviderFactory
    from gateways.tests.factories import SiteFactory
    from resources.tests.factories import ConnectionFactory, ResourceFactory

    config = {"clients_upstream_dns": [{"protocol": "ip_port", "address": "1.1.1.1"}]}
    with transaction.atomic():
        account = AccountFactory(slug="bench_sync", config=config)
        provider = ProviderFactory(
            account=account,
            name="Entra",
            adapter="microsoft_entra",
            provisioner="custom",
            adapter_state={"access_token": TOKEN},
        )
        site = SiteFactory(account=account, name="sync-site")
        granted = ResourceFactory(account=account, address="sync.bench.example.com", name="sync")
        ConnectionFactory(resource=granted, account=account, gateway_group=site)
    return {"account": account, "provider_id": provider.pk, "resource": granted}


def grant_and_issue(seeded: dict[str, Any], shape: Shape) -> list[str]:
    """Group 0 gets a policy for the resource; the first `--clients` users a client token."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import ActorGroup, AuthIdentity
    from accounts.services.tokens import token_create
    from resources.tests.factories import PolicyFactory

    account = seeded["account"]
    expires_at = timezone.now() + timedelta(days=7)
    user_ids = [_uid("user", i) for i in range(shape.clients)]
    with transaction.atomic():
        group = ActorGroup.objects.get(
            provider_id=seeded["provider_id"], provider_identifier=f"G:{_uid('group', 0)}"
        )
        PolicyFactory(account=account, actor_group=group, resource=seeded["resource"])
        identities = {
            i.provider_identifier: i
            for i in AuthIdentity.objects.filter(
                provider_id=seeded["provider_id"], provider_identifier__in=user_ids
            ).select_related("actor", "actor__account")
        }
        tokens = []
        for uid in user_ids:
            identity = identities[uid]
            issued = token_create(
                type="client", account=account, actor=identity.actor, identity=identity,
                expires_at=expires_at,
            )  # fmt: skip
            tokens.append(issued.encoded)
    return tokens


@contextlib.contextmanager
def clients_process(
    port: int, tokens: list[str], marker: str, args: argparse.Namespace
) -> Iterator[Any]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_clients_main,
        args=(child, port, tokens, marker, args.concurrency, args.push_timeout),
        daemon=True,
    )
    process.start()
    try:
        yield parent
    finally:
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join()


# ------------------------------------------------------------------ the run


def measure_pushes(
    args: argparse.Namespace, env: dict[str, str], seeded: dict, shape: Shape, fake: FakeDirectory
) -> tuple[dict, dict]:
    """Clients online, then the churn sync: (the sync's figures, the pushes')."""
    from django.db import connections

    from bench.sockets import daphne, raise_fd_limit

    raise_fd_limit(shape.clients + 1000)
    tokens = grant_and_issue(seeded, shape)
    connections.close_all()
    marker = str(seeded["resource"].pk)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        server = stack.enter_context(daphne(env, Path(tmp), "sync"))
        conn = stack.enter_context(clients_process(server.port, tokens, marker, args))
        joined = conn.recv()
        example = f"; e.g. {joined['errors'][0]}" if joined["errors"] else ""
        print(
            f"   {joined['joined']} clients joined in {joined['join_s']} s"
            f" ({joined['failed']} failed{example}; {joined['timings']});"
            f" daphne RSS {server.rss_kb() / 1024:.0f} MB"
        )
        fake.version(1)
        conn.send("go")
        churn = timed_sync("churn (5 %)", seeded["provider_id"], fake, args.profile)
        arrivals: list[float] = conn.recv()
    commit = churn["commit"]
    pushes: dict[str, Any] = {"clients": joined["joined"], "received": len(arrivals)}
    if arrivals and commit is not None:
        pushes.update(
            first_s=round(arrivals[0] - commit, 3),
            median_s=round(arrivals[len(arrivals) // 2] - commit, 3),
            last_s=round(arrivals[-1] - commit, 3) if len(arrivals) == joined["joined"] else None,
        )
    print(
        f"   pushes: {pushes['received']}/{pushes['clients']} clients got"
        f" resource_created_or_updated; after the commit: first {pushes.get('first_s')} s,"
        f" median {pushes.get('median_s')} s, last {pushes.get('last_s')} s"
    )
    return churn, pushes


def verdicts(first: dict, nochange: dict, churn: dict, pushes: dict) -> list[tuple[str, str, str]]:
    rss = max(first["peak_rss_mb"], nochange["peak_rss_mb"], churn["peak_rss_mb"])
    quiet = nochange["writes"] == 0 and nochange["changelog_rows"] == 0
    last = pushes.get("last_s")
    return [
        (f"first sync {first['wall_s']} s", "≤ 60 s", _ok(first["wall_s"] <= TARGETS["first_s"])),
        (
            f"no-change re-sync {nochange['wall_s']} s, {nochange['writes']} writes,"
            f" {nochange['changelog_rows']} change-log rows",
            "≤ 10 s, no writes",
            _ok(nochange["wall_s"] <= TARGETS["nochange_s"] and quiet),
        ),
        (f"peak RSS {rss} MB", "≤ 300 MB", _ok(rss <= TARGETS["rss_mb"])),
        (
            f"pushes to the last of {pushes['clients']} clients {last} s",
            "≤ 2 s",
            _ok(last is not None and last <= TARGETS["push_last_s"]),
        ),
    ]


def _ok(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--users", type=int, default=10000, help="directory users")
    add("--groups", type=int, default=1000, help="directory groups")
    add("--memberships-per-user", type=int, default=5, help="groups per user")
    add("--clients", type=int, default=1000, help="connected clients (users in group 0)")
    add("--concurrency", type=int, default=64, help="client handshakes in flight")
    add("--push-timeout", type=float, default=60.0, help="seconds to wait for the pushes")
    add("--profile", action="store_true", help="print a cProfile of each sync")
    add("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not 0 < args.clients <= args.users // 10 or args.groups < 80:
        parser.error("needs --clients ≤ --users / 10 and --groups ≥ 80")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    shape = Shape(args.users, args.groups, args.memberships_per_user, args.clients)
    print(
        f"== fake Microsoft Graph: {shape.users} users, {shape.groups} groups,"
        f" {shape.users * shape.per_user} memberships (group 0 empty), {PAGE_SIZE} per page"
    )
    fake = FakeDirectory(shape)
    try:
        env = setup_django(fake.url)
        seeded = seed()
        print("== syncs (provider_sync_run, in this process)")
        first = timed_sync("first sync", seeded["provider_id"], fake, args.profile)
        analyze()
        nochange = timed_sync("no-change re-sync", seeded["provider_id"], fake, args.profile)
        print(f"== churn with {shape.clients} connected clients that join group 0 (its policy)")
        churn, pushes = measure_pushes(args, env, seeded, shape, fake)
    finally:
        fake.stop()
    print("\n== summary (PostgreSQL, Redis, daphne, the fake and the clients are other processes)")
    print("| sync | wall | fetch / db | HTTP requests | queries | writes | change-log rows |")
    print("|---|---|---|---|---|---|---|")
    for r in (first, nochange, churn):
        print(
            f"| {r['label']} | {r['wall_s']} s | {r['fetch_s']} / {r['db_s']} s |"
            f" {r['http_requests']} | {r['queries']} | {r['writes']} | {r['changelog_rows']} |"
        )
    results = verdicts(first, nochange, churn, pushes)
    for figure, target, verdict in results:
        print(f"   {verdict}  {figure} (target {target})")
    if args.json:
        payload = {"first": first, "nochange": nochange, "churn": churn, "pushes": pushes}
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    print("PASS" if all(v == "PASS" for *_, v in results) else "FAIL")
    return 0 if all(v == "PASS" for *_, v in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
