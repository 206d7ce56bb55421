"""Admin list pages with a big account: server time per page and query counts (issue 6).

    make bench-portal
    python -m firezone.devservices exec -- python bench/portal.py [--rows 10000] [--runs 20]

It needs DATABASE_URL and REDIS_URL (devservices gives throwaway ones), migrates that database,
bulk-loads one account with `--rows` resources (each connected to one of 20 sites), `--rows`
policies (one per resource, spread over 50 groups), `--rows` clients (of 100 users) and the
users themselves, then renders each list page in-process through Django's test client with an
admin's browser session, `--runs` times, and prints p50/p95/max wall time (request handling +
template rendering, no network) and the number of SQL queries of one render. The pages run with
DEBUG off, like production; query counting forces a debug cursor for one extra render only.

A second account, "many groups", has 20 users (and its admin) each in `--groups` groups (5,000
by default; 0 skips it) and times its actors and groups lists: the membership peeks.

Target (issue 6): ≤ 200 ms per page on a 10,000-row account, and for the actors list of users
in 5,000 groups each.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench._env import configure_environment  # noqa: E402


def setup_django() -> None:
    configure_environment(
        make_target="bench-portal",
        script="portal.py",
        allowed_hosts="testserver,127.0.0.1,localhost",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _admin_account(name: str, slug: str) -> tuple[Any, Any, Any]:
    """A new account with every feature, an email provider and its admin (actor, identity)."""
    from accounts.models import Account, Actor, AuthIdentity, AuthProvider

    account = Account.objects.create(
        name=name, slug=slug, features={f: True for f in Account.FEATURES}
    )
    provider = AuthProvider.objects.create(
        account=account, name="Email", adapter="email", provisioner="manual", created_by="system"
    )
    admin = Actor.objects.create(account=account, type="account_admin_user", name="Admin")
    identity = AuthIdentity.objects.create(
        account=account, actor=admin, provider=provider,
        provider_identifier="admin@bench.test", email="admin@bench.test", created_by="system",
    )  # fmt: skip
    return account, admin, identity


def load(rows: int, *, users: int = 100, groups: int = 50) -> tuple[Any, Any]:
    """The account and its admin's identity, with `rows` resources (over 20 sites), policies
    (over `groups` groups) and clients (of `users` users, one group each).
    (bench/api.py loads its accounts with this too.)"""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import (
        Actor,
        ActorGroup,
        ActorGroupMembership,
    )
    from gateways.models import Client, Gateway, Site
    from resources.models import Policy, Resource, ResourceConnection

    slug = f"bench{secrets.token_hex(3)}"
    now = timezone.now()
    t0 = time.monotonic()
    with transaction.atomic():
        account, _admin, identity = _admin_account("Bench", slug)
        sites = Site.objects.bulk_create(
            [Site(account=account, name=f"site-{i:02d}", created_by="system") for i in range(20)]
        )
        Gateway.objects.bulk_create(
            [
                Gateway(
                    account=account, group=sites[i % 20], external_id=f"gw-{i}", name=f"gw-{i}",
                    public_key=secrets.token_hex(16), last_seen_at=now,
                    last_seen_user_agent="Linux/24.04 gateway/1.4.17", last_seen_version="1.4.17",
                    last_seen_remote_ip="198.51.100.1",
                )
                for i in range(40)
            ]
        )  # fmt: skip
        all_users = Actor.objects.bulk_create(
            [Actor(account=account, type="account_user", name=f"User {i}") for i in range(users)]
        )
        all_groups = ActorGroup.objects.bulk_create(
            [
                ActorGroup(account=account, name=f"Group {i:02d}", type="static",
                           created_by="system")
                for i in range(groups)
            ],
            batch_size=2000,
        )  # fmt: skip
        ActorGroupMembership.objects.bulk_create(
            [
                ActorGroupMembership(account=account, actor=user, group=all_groups[i % groups])
                for i, user in enumerate(all_users)
            ],
            batch_size=2000,
        )
        resources = Resource.objects.bulk_create(
            [
                Resource(
                    account=account, type="dns", address=f"app{i}.bench.test",
                    name=f"Resource {i:05d}", ip_stack="dual", filters=[], created_by="system",
                )
                for i in range(rows)
            ],
            batch_size=2000,
        )  # fmt: skip
        ResourceConnection.objects.bulk_create(
            [
                ResourceConnection(
                    account=account, resource=r, gateway_group=sites[i % 20], created_by="system"
                )
                for i, r in enumerate(resources)
            ],
            batch_size=2000,
        )
        Policy.objects.bulk_create(
            [
                Policy(
                    account=account, actor_group=all_groups[i % groups], resource=r, conditions=[],
                    created_by="system",
                )
                for i, r in enumerate(resources)
            ],
            batch_size=2000,
        )  # fmt: skip
        Client.objects.bulk_create(
            [
                Client(
                    account=account, actor=all_users[i % users], external_id=f"client-{i}",
                    name=f"device-{i:05d}", public_key=secrets.token_hex(16), last_seen_at=now,
                    last_seen_user_agent="Mac OS/14.5 (arm64) connlib/1.4.0",
                    last_seen_version="1.4.0", last_seen_remote_ip="198.51.100.7",
                )
                for i in range(rows)
            ],
            batch_size=2000,
        )  # fmt: skip
    print(f"loaded {rows} resources/policies/clients in {time.monotonic() - t0:.1f} s")
    return account, identity


def load_many_groups(groups: int, users: int = 20) -> tuple[object, object]:
    """An account whose admin and `users` users are each in all of its `groups` groups."""
    from django.db import connection, transaction

    from accounts.models import (
        Actor,
        ActorGroup,
        ActorGroupMembership,
    )

    slug = f"benchgroups{secrets.token_hex(3)}"
    t0 = time.monotonic()
    with transaction.atomic():
        account, admin, identity = _admin_account("Bench groups", slug)
        actors = [
            admin,
            *Actor.objects.bulk_create(
                [
                    Actor(account=account, type="account_user", name=f"User {i}")
                    for i in range(users)
                ]
            ),
        ]
        all_groups = ActorGroup.objects.bulk_create(
            [
                ActorGroup(account=account, name=f"Group {i:05d}", type="static",
                           created_by="system")
                for i in range(groups)
            ],
            batch_size=2000,
        )  # fmt: skip
        ActorGroupMembership.objects.bulk_create(
            [
                ActorGroupMembership(account=account, actor=actor, group=group)
                for actor in actors
                for group in all_groups
            ],
            batch_size=5000,
        )
    tables = [ActorGroupMembership._meta.db_table, ActorGroup._meta.db_table]
    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would give
        cursor.execute(f"ANALYZE {', '.join(tables)}")
    print(f"loaded {len(actors)} actors in {groups} groups each in {time.monotonic() - t0:.1f} s")
    return account, identity


def time_pages(identity: object, pages: list[tuple[str, str | None]], runs: int) -> None:
    """Print status, query count and p50/p95/max ms of each page, as `identity`'s admin."""
    from django.db import connection
    from django.test import Client as HttpClient
    from django.test.utils import CaptureQueriesContext

    from accounts.tests.portal import UA, inject_session

    http = HttpClient(HTTP_USER_AGENT=UA)
    inject_session(http, identity)
    print(f"\n{'page':32} {'status':>6} {'queries':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for label, url in pages:
        if url is None:
            print(f"{label:32} (no next cursor found)")
            continue
        response = http.get(url)  # warm-up (templates, connections)
        with CaptureQueriesContext(connection) as captured:
            http.get(url)
        queries = len(captured)  # now: the next request clears the connection's query log
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            http.get(url)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(
            f"{label:32} {response.status_code:>6} {queries:>8} "
            f"{statistics.median(times):>8.1f} {p95:>8.1f} {times[-1]:>8.1f}"
        )


def measure(rows: int, runs: int, groups: int) -> None:
    from django.test import Client as HttpClient

    from accounts.tests.portal import UA, inject_session

    account, identity = load(rows)
    http = HttpClient(HTTP_USER_AGENT=UA)
    inject_session(http, identity)
    base = f"/{account.slug}"
    first = http.get(f"{base}/resources")
    cursor = re.search(r"resources_cursor=([A-Za-z0-9_-]+)", first.content.decode())
    page2 = f"{base}/resources?resources_cursor={cursor.group(1)}" if cursor else None
    by_address = f"{base}/resources?resources_order_by=resources:desc:address"
    pages = [
        ("sites", f"{base}/sites"),
        ("resources", f"{base}/resources"),
        ("resources, page 2", page2),
        ("resources, search", f"{base}/resources?resources_filter[name]=app99"),
        ("resources, by address desc", by_address),
        ("policies", f"{base}/policies"),
        ("clients", f"{base}/clients"),
        ("clients, online", f"{base}/clients?clients_filter[presence]=online"),
        ("actors", f"{base}/actors"),
        ("groups", f"{base}/groups"),
    ]  # fmt: skip
    time_pages(identity, pages, runs)
    if groups:
        account, identity = load_many_groups(groups)
        base = f"/{account.slug}"
        pages = [
            (f"actors, {groups} groups each", f"{base}/actors"),
            (f"groups ({groups})", f"{base}/groups"),
        ]
        time_pages(identity, pages, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--groups", type=int, default=5_000, help="0 skips the many-groups case")
    args = parser.parse_args()
    setup_django()
    measure(args.rows, args.runs, args.groups)


if __name__ == "__main__":
    main()
