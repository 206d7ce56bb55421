"""REST API list endpoints with a big account: server time per page and queries (issue 14).

    make bench-api
    python -m firezone.devservices exec -- python bench/api.py [--rows 10000] [--small 1000]
                                                               [--runs 50] [--deep 50]

It needs DATABASE_URL and REDIS_URL (devservices gives throwaway ones) and migrates that
database. It bulk-loads an account with bench/portal.py's loader: n = `--small` resources (over
20 sites, 40 gateways), one policy each (over n / 20 groups, at least 50) and n clients (of
n / 10 users, at least 100, one group each), then an API client and its token. Each list
endpoint is requested in-process through Django's test client on the API origin (Host header,
bearer token; no network) with `limit=100`: the first page, and a page deep in the list (page
`--deep`, or the last one) reached by following `metadata.next_page`. Each is requested `--runs`
times: p50, p95 and max wall time (routing, authentication, the rate limit's Redis call,
selectors, serialization, JSON rendering), and the number of SQL queries of one extra request.
Then a second account with n = `--rows` does the same: the query counts must not change with
the rows.

DEBUG is off, like production (query counting forces a debug cursor for one request only). The
rate limit is raised (API_CAPACITY, API_REFILL_RATE) so that it never answers 429 here; the
bucket is still spent in Redis on every request.

Target (issue 14): p95 ≤ 100 ms per page of 100 on the 10,000-row account, queries constant.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench._env import configure_environment  # noqa: E402

API_ORIGIN = "http://localhost:13001"  # tests/api.py's API_HOST
LIMIT = 100
TARGET_P95_MS = 100.0


@dataclass
class Timing:
    endpoint: str
    page: str
    rows: int
    status: int
    queries: int
    p50: float
    p95: float
    max: float


def setup_django() -> None:
    configure_environment(
        make_target="bench-api",
        script="api.py",
        allowed_hosts="testserver,127.0.0.1,localhost",
        API_EXTERNAL_URL=API_ORIGIN,  # production's default is the portal's origin: API off
        API_CAPACITY="1000000000",
        API_REFILL_RATE="1000000",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load_account(rows: int) -> tuple[Any, Any, str]:
    """An account with `rows` resources, policies and clients (bench/portal.py's loader), its
    admin identity and an API client's token."""
    from django.db import connection

    from accounts.models import Actor
    from bench.portal import load
    from tests.api import api_token

    account, identity = load(rows, users=max(100, rows // 10), groups=max(50, rows // 20))
    client = Actor.objects.create(account=account, type="api_client", name="Bench API client")
    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would give
        cursor.execute("ANALYZE")
    return account, identity, api_token(client)


def _get(http: Any, path: str, cursor: str | None) -> Any:
    params: dict[str, Any] = {"limit": LIMIT}
    if cursor:
        params["page_cursor"] = cursor
    return http.get(path, **params)


def deep_cursor(http: Any, path: str, deep: int) -> tuple[int, str | None]:
    """The page number reached (≤ `deep`) by following next_page from the first, its cursor."""
    cursor: str | None = None
    page = 1
    while page < deep:
        response = _get(http, path, cursor)
        assert response.status_code == 200, (path, response.status_code, response.content)
        following = response.json()["metadata"]["next_page"]
        if not following:
            break
        cursor, page = following, page + 1
    return page, cursor


def time_page(
    http: Any, endpoint: str, label: str, path: str, cursor: str | None, runs: int, sql: bool
) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = _get(http, path, cursor)  # warm-up
    assert response.status_code == 200, (path, response.status_code, response.content)
    rows = len(response.json()["data"])
    with CaptureQueriesContext(connection) as captured:
        _get(http, path, cursor)
    queries = len(captured)
    if sql:
        print(f"\n{endpoint} {label}:", *(q["sql"][:300] for q in captured), sep="\n  ")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _get(http, path, cursor)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return Timing(
        endpoint, label, rows, response.status_code, queries, statistics.median(times), p95,
        times[-1],
    )  # fmt: skip


def measure(rows: int, runs: int, deep: int, sql: bool = False) -> list[Timing]:
    from accounts.models import Actor, ActorGroup
    from gateways.models import Site
    from tests.api import ApiClient

    account, identity, token = load_account(rows)
    http = ApiClient(token)
    site = Site.objects.filter(account=account, name="site-00").get()
    group = ActorGroup.objects.filter(account=account, name="Group 00").get()
    admin = Actor.objects.get(pk=identity.actor_id)
    endpoints = [
        "/resources",
        "/policies",
        "/clients",
        "/actors",
        "/actor_groups",
        "/gateway_groups",
        "/identity_providers",
        f"/gateway_groups/{site.pk}/gateways",
        f"/actor_groups/{group.pk}/memberships",
        f"/actors/{admin.pk}/identities",
    ]
    timings = []
    for path in endpoints:
        name = path.replace(str(site.pk), "<site>").replace(str(group.pk), "<group>")
        name = name.replace(str(admin.pk), "<admin>")
        timings.append(time_page(http, name, "first", path, None, runs, sql))
        page, cursor = deep_cursor(http, path, deep)
        if cursor:
            timings.append(time_page(http, name, f"page {page}", path, cursor, runs, sql))
    return timings


def report(title: str, timings: list[Timing]) -> None:
    print(f"\n{title}")
    print(
        f"{'endpoint':36} {'page':>8} {'rows':>5} {'status':>6} {'queries':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}"
    )
    for t in timings:
        print(
            f"{t.endpoint:36} {t.page:>8} {t.rows:>5} {t.status:>6} {t.queries:>7} "
            f"{t.p50:>7.1f} {t.p95:>7.1f} {t.max:>7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000, help="0 skips the small account")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--deep", type=int, default=50, help="the deep page's number")
    parser.add_argument("--sql", action="store_true", help="print the queries of each page")
    args = parser.parse_args()
    setup_django()
    small = measure(args.small, args.runs, args.deep) if args.small else []
    if small:
        report(f"{args.small} resources, policies, clients", small)
    large = measure(args.rows, args.runs, args.deep, args.sql)
    report(f"{args.rows} resources, policies, clients", large)

    failed = False
    by_key = {(t.endpoint, t.page.startswith("page")): t.queries for t in small}
    print()
    for t in large:
        if t.p95 > TARGET_P95_MS:
            failed = True
            print(f"FAIL {t.endpoint} {t.page}: p95 {t.p95:.1f} ms > {TARGET_P95_MS:.0f} ms")
        before = by_key.get((t.endpoint, t.page.startswith("page")))
        if before is not None and before != t.queries:
            failed = True
            print(f"FAIL {t.endpoint} {t.page}: {before} queries at {args.small}, {t.queries} now")
    if not failed:
        constant = f", queries the same at {args.small} and {args.rows}" if small else ""
        print(f"PASS: every page p95 ≤ {TARGET_P95_MS:.0f} ms{constant}")


if __name__ == "__main__":
    main()
