"""The cost of one change-log catch-up poll (`firezone.catchup.read_log`) on a big change log.

    make bench-catchup ARGS="--rows 5000000"
    python -m firezone.devservices exec -- python bench/catchup.py [--rows 2000000]
        [--accounts 2000] [--hubs 1000] [--recent 200] [--json F]

It needs DATABASE_URL and REDIS_URL (devservices gives throwaway ones) and migrates that
database. `--rows` historical change-log rows (`--accounts` accounts, many rows per transaction,
token deletions among them) go in with one INSERT ... SELECT, then `--recent` real transactions
write a row each for random accounts (what a poll must find). A poll for `--hubs` loaded hubs
(their ledgers at the snapshot before the recent writes) is timed: median and max of 20, and its
plan (EXPLAIN ANALYZE); then the same without the (account_id, xid) index, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

from bench._env import configure_environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--hubs", type=int, default=1000)
    parser.add_argument("--recent", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    configure_environment(make_target="bench-catchup", script="catchup.py", allowed_hosts="*")
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from firezone.catchup import Snapshot, read_log
    from firezone.models import ChangeLog

    call_command("migrate", verbosity=0)
    table = ChangeLog._meta.db_table
    accounts = [str(uuid.uuid4()) for _ in range(args.accounts)]
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
        # Historical rows: ~10 rows per transaction, xids below the current one; 1 % token
        # deletions.
        cursor.execute(
            f"""
            INSERT INTO {table} (account_id, "table", op, old_data, data, vsn, inserted_at, xid)
            SELECT (%s::uuid[])[1 + (i %% %s)],
                   CASE WHEN i %% 100 = 0 THEN 'tokens' ELSE 'policies' END,
                   CASE WHEN i %% 100 = 0 THEN 'delete' ELSE 'insert' END,
                   CASE WHEN i %% 100 = 0 THEN jsonb_build_object('id', gen_random_uuid()) END,
                   CASE WHEN i %% 100 = 0 THEN NULL ELSE '{{}}'::jsonb END,
                   0, now() - interval '30 days' + i * interval '1 millisecond',
                   1 + i / 10 * (pg_current_xact_id()::text::bigint - 2) / (%s / 10 + 1)
            FROM generate_series(0, %s - 1) AS i
            """,
            [accounts, args.accounts, args.rows, args.rows],
        )
        cursor.execute(f"VACUUM ANALYZE {table}")
    loaded = time.monotonic() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text")
        before = Snapshot.parse(cursor.fetchone()[0])
    hubs = accounts[: args.hubs]
    for i in range(args.recent):
        with transaction.atomic():
            ChangeLog.objects.create(
                account_id=hubs[i % len(hubs)], table="policies", op="insert", data={}
            )
    ledgers = [(account, before) for account in hubs]

    def timed() -> tuple[float, float, int]:
        times = []
        found = 0
        for _ in range(20):
            t0 = time.perf_counter()
            poll = read_log(ledgers, before)
            times.append(time.perf_counter() - t0)
            found = sum(len(x) for x in poll.committed.values())
        return statistics.median(times), max(times), found

    median, worst, found = timed()
    plan = _plan(connection, read_log, ledgers, before)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX changelog_account_xid")
    try:
        no_index_median, _, _ = timed()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE INDEX changelog_account_xid ON {table} (account_id, xid)")
    result = {
        "rows": args.rows,
        "accounts": args.accounts,
        "hubs": len(hubs),
        "recent_transactions": args.recent,
        "found": found,
        "load_seconds": round(loaded, 1),
        "poll_median_ms": round(median * 1000, 2),
        "poll_max_ms": round(worst * 1000, 2),
        "poll_without_index_median_ms": round(no_index_median * 1000, 2),
    }
    print(plan)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if found != args.recent:
        raise SystemExit(f"the poll found {found} transactions, expected {args.recent}")


def _plan(connection, read_log, ledgers, before) -> str:
    """EXPLAIN ANALYZE of the poll's statement (captured from the real call)."""
    captured: list[tuple[str, list]] = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        read_log(ledgers, before)
    sql, params = captured[-1]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
