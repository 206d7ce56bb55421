"""Delivery catch-up: the change log is the source of truth, the device stream the fast path.

A committed write reaches the sockets through Redis (`firezone.stream` for the account hubs, the
channel layer for `session.<token>`), published after commit. A publish that fails (the writing
process cannot reach Redis, or times out) is logged by the writer and would be lost: the
receivers' own checks (sequence gaps, stream reconnects) only see losses on their side. So each
server process also reads the change log, cheaply, once per `STREAM_CATCHUP_SECONDS` (1 s):

* Every account hub keeps a `Ledger`: the transactions its model holds are those of a database
  snapshot (`known`: the load's, then advanced by each poll) plus the stream messages applied
  since (`applied`, by transaction id). ONE statement per poll, for every hub of the process,
  lists the account's streamed transactions the snapshot does not contain (`xid >= xmax` or in
  its in-progress list: an index range scan on (account_id, xid)), with the poll's own snapshot.
  A committed transaction neither known nor applied is a suspect (its message may be in flight);
  still unapplied at the next poll, it is missing: the hub reloads (sockets get only the diff,
  gateways re-read their flows) and hands the missed client and gateway rows to their own
  sockets (`logged_changes`). Otherwise the ledger advances to the poll's snapshot. A missed
  change thus reaches the devices within two poll intervals; one delivered both ways is pushed
  once (reloads push differences only, a late message of a transaction the reload saw is
  skipped by its xid).
* Session ends (`session.disconnect` through the channel layer, a relay's own-row deletion)
  are looked up in the same statement: every token deleted since the previous poll closes this
  process's sockets of it, every account disabled since its client and gateway sockets, every
  relay deleted since its socket (`register_session`), whether or not the group messages
  arrived (closing twice is a no-op).

Nothing here runs without sockets: the task starts with the first hub or session of the event
loop and ends with the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from django.conf import settings
from django.db import connection
from django.utils import timezone

from firezone import changes, outage
from firezone.db import db_call
from firezone.models import ChangeLog

logger = logging.getLogger(__name__)

# A socket that authenticated just before a session end was read may register just after: ends
# are remembered this long and checked at registration (shorter for a disabled account: it may
# be enabled again; deleted rows never come back).
END_MEMORY_SECONDS: Final = {"token": 60.0, "relay": 60.0, "account": 10.0}


def token_end(token_id: Any) -> str:
    """The end of every socket authenticated with the token: its deletion."""
    return f"token:{token_id}"


def account_end(account_id: Any) -> str:
    """The end of the account's client and gateway sockets: the account being disabled."""
    return f"account:{account_id}"


def relay_end(relay_id: Any) -> str:
    """The end of a relay's socket: its row being deleted."""
    return f"relay:{relay_id}"


# The first poll of a process looks this far back for token deletions (sockets authenticated
# before the catch-up started; clock skew between servers).
FIRST_POLL_LOOKBACK: Final = timedelta(seconds=60)


def interval() -> float:
    return float(getattr(settings, "STREAM_CATCHUP_SECONDS", 1.0))


# --- snapshots and ledgers (pure) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A PostgreSQL `pg_snapshot` (xmin:xmax:xip,...): which transactions a reader saw."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def contains(self, xid: int | None) -> bool:
        if xid is None:
            return False
        if xid < self.xmin:
            return True
        if xid >= self.xmax:
            return False
        return xid not in self.xip


@dataclass(eq=False)
class Ledger:
    """What a hub's model holds: every transaction `known` contains except the `suspects`, and
    the transactions of the stream messages `applied` since. Replaced at each (re)load."""

    known: Snapshot
    applied: set[int] = field(default_factory=set)
    # Committed, seen by the previous poll, not applied then (their message may be in flight).
    suspects: frozenset[int] = frozenset()

    def note_applied(self, xid: int | None) -> None:
        if xid is not None:
            self.applied.add(xid)

    def check(self, committed: Iterable[int], now: Snapshot) -> frozenset[int]:
        """One poll. `committed`: the account's streamed transactions visible in `now` that
        `known` may not contain. Returns the missing transactions (suspects of the previous
        poll still not applied); when there are none, the ledger advances to `now` and the
        new unapplied transactions become the suspects."""
        missing = frozenset(x for x in self.suspects if x not in self.applied)
        if missing:
            return missing
        self.suspects = frozenset(
            x for x in committed if not self.known.contains(x) and x not in self.applied
        )
        self.known = now
        # Applied transactions `now` contains are known from now on; later ones stay.
        self.applied = {x for x in self.applied if not now.contains(x)}
        return frozenset()


# --- who follows the log ----------------------------------------------------------------------


class Follower(Protocol):
    """An account hub, as the catch-up sees it."""

    account_id: str

    def catchup_ledger(self) -> Ledger | None:
        """The ledger to check now, or None (loading: a fresh ledger comes with the load)."""
        ...

    async def catchup_missed(self, ledger: Ledger, missing: frozenset[int]) -> None: ...


SessionClose = Callable[[], Awaitable[None]]


@dataclass
class Poll:
    snapshot: Snapshot
    committed: dict[str, set[int]]  # account id → transaction ids
    revoked: list[str]  # deleted token ids
    disabled: list[str] = field(default_factory=list)  # disabled account ids
    relays_deleted: list[str] = field(default_factory=list)

    @property
    def ends(self) -> list[str]:
        return [
            *map(token_end, self.revoked),
            *map(account_end, self.disabled),
            *map(relay_end, self.relays_deleted),
        ]


# The rows of the partial index `changelog_session_ends` (firezone/models.py), as SQL.
SESSION_ENDS_SQL: Final = (
    "((t.\"table\" = 'tokens' AND t.op = 'delete')"
    " OR (t.\"table\" = 'relays' AND t.op = 'delete')"
    " OR (t.\"table\" = 'accounts' AND t.op = 'update'))"
)


def _streamed_filter() -> tuple[str, list[str]]:
    """SQL (and its parameters) that keeps the change-log rows published on the device stream."""
    sql = " AND ".join('NOT (c."table" = %s AND c.op = %s)' for _ in changes.NOT_STREAMED)
    params = [value for pair in sorted(changes.NOT_STREAMED) for value in pair]
    return sql or "TRUE", params


def read_log(ledgers: list[tuple[str, Snapshot]], tokens_since: Snapshot | datetime) -> Poll:
    """Sync, ONE statement (one snapshot): the streamed transactions each account's snapshot
    does not contain, the tokens deleted since `tokens_since`, and the statement's snapshot."""
    table = connection.ops.quote_name(ChangeLog._meta.db_table)
    streamed, streamed_params = _streamed_filter()
    accounts = [account for account, _ in ledgers]
    xmaxes = [snap.xmax for _, snap in ledgers]
    open_accounts = [account for account, snap in ledgers for _ in snap.xip]
    open_xids = [xid for _, snap in ledgers for xid in snap.xip]
    # Session ends: token deletions and accounts whose `disabled_at` was set (the partial
    # index `changelog_session_ends`).
    ends = (
        "SELECT CASE t.\"table\" WHEN 'tokens' THEN 't' WHEN 'relays' THEN 'r' ELSE 'a' END,"  # noqa: S608
        " COALESCE(t.data, t.old_data)->>'id', NULL"
        f" FROM {table} t WHERE {SESSION_ENDS_SQL}"
        " AND (t.op = 'delete' OR (t.data->>'disabled_at' IS NOT NULL"
        " AND t.old_data->>'disabled_at' IS NULL))"
    )
    if isinstance(tokens_since, Snapshot):
        # Two index conditions on the partial index (an OR would filter all of it).
        tokens = f"{ends} AND t.xid >= %s UNION ALL {ends} AND t.xid = ANY(%s::bigint[])"
        tokens_params: list[Any] = [tokens_since.xmax, list(tokens_since.xip)]
    else:
        tokens = f"{ends} AND t.inserted_at >= %s"
        tokens_params = [tokens_since]
    # LATERAL subqueries with DISTINCT are not flattened into a join: each hub is one index
    # range scan on (account_id, xid), whatever the planner estimates for the arrays.
    sql = f"""
WITH bound(account_id, xmax) AS (SELECT * FROM unnest(%s::uuid[], %s::bigint[])),
inflight(account_id, xid) AS (SELECT * FROM unnest(%s::uuid[], %s::bigint[]))
SELECT 's', b.account_id::text, x.xid FROM bound b CROSS JOIN LATERAL (
    SELECT DISTINCT c.xid FROM {table} c
    WHERE c.account_id = b.account_id AND c.xid >= b.xmax AND {streamed}
) x
UNION ALL
SELECT 's', o.account_id::text, x.xid FROM inflight o CROSS JOIN LATERAL (
    SELECT DISTINCT c.xid FROM {table} c
    WHERE c.account_id = o.account_id AND c.xid = o.xid AND {streamed}
) x
UNION ALL
{tokens}
UNION ALL
SELECT 'p', pg_current_snapshot()::text, NULL
"""  # noqa: S608 - only our table name and placeholders are formatted in
    params: list[Any] = [
        accounts,
        xmaxes,
        open_accounts,
        open_xids,
        *streamed_params,
        *streamed_params,
        *tokens_params,
    ]
    committed: dict[str, set[int]] = {}
    revoked: list[str] = []
    disabled: list[str] = []
    relays: list[str] = []
    snapshot: Snapshot | None = None
    with connection.cursor() as cursor:
        # One statement: its rows and `pg_current_snapshot()` share the statement's snapshot.
        cursor.execute(sql, params)
        for kind, text, xid in cursor.fetchall():
            if kind == "s":
                committed.setdefault(text, set()).add(int(xid))
            elif kind == "t":
                if text:
                    revoked.append(text)
            elif kind == "a":
                if text:
                    disabled.append(text)
            elif kind == "r":
                if text:
                    relays.append(text)
            else:
                snapshot = Snapshot.parse(text)
    assert snapshot is not None
    return Poll(
        snapshot=snapshot,
        committed=committed,
        revoked=revoked,
        disabled=disabled,
        relays_deleted=relays,
    )


def logged_changes(account_id: Any, xids: Iterable[int], tables: Iterable[str]) -> list[dict]:
    """Sync: the change-log rows of these transactions of an account (of `tables`), in `lsn`
    order, as the device stream carries them (`Change` dicts)."""
    rows = ChangeLog.objects.filter(
        account_id=account_id, xid__in=list(xids), table__in=list(tables)
    ).order_by("lsn")
    return [dataclasses.asdict(changes.Change.from_entry(row)) for row in rows]


# --- the per-process task -----------------------------------------------------------------------


class Catchup:
    """The catch-up of one event loop (one per server process)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.followers: dict[Follower, None] = {}
        # end (`token_end`, ...) → the sessions it closes; a session is under each of its ends
        self.sessions: dict[str, dict[object, SessionClose]] = {}
        # recent ends → forget at (monotonic)
        self.ended: dict[str, float] = {}
        self.tokens_known: Snapshot | None = None
        self.started_at = timezone.now()
        self.task: asyncio.Task | None = None
        self.polls = 0

    # ---------------------------------------------------------------- registration

    def follow(self, follower: Follower) -> None:
        self.followers[follower] = None
        self._ensure_running()

    def unfollow(self, follower: Follower) -> None:
        self.followers.pop(follower, None)  # the task ends at its next wake-up when idle

    def add_session(self, key: object, close: SessionClose, ends: Iterable[str]) -> bool:
        """Register a socket under its ends; False when one of them was seen already (the
        caller closes it)."""
        ends = list(ends)
        if not ends:
            return True
        if any(end in self.ended for end in ends):
            return False
        for end in ends:
            self.sessions.setdefault(end, {})[key] = close
        self._ensure_running()
        return True

    def remove_session(self, key: object, ends: Iterable[str]) -> None:
        for end in ends:
            sessions = self.sessions.get(end)
            if sessions is not None:
                sessions.pop(key, None)
                if not sessions:
                    del self.sessions[end]

    @property
    def idle(self) -> bool:
        return not self.followers and not self.sessions

    def _ensure_running(self) -> None:
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())

    # ---------------------------------------------------------------- polling

    async def _run(self) -> None:
        failing = False
        while not self.idle:
            await asyncio.sleep(interval())
            if self.idle:
                break
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: nothing advanced, the next poll retries
                if not failing:  # once per outage, not every second
                    if outage.is_outage(exc):
                        outage.log_outage(logger, "change-log catch-up", exc)
                    else:
                        logger.warning("change-log catch-up failed; retrying", exc_info=True)
                failing = True
            else:
                if failing:
                    logger.info("change-log catch-up works again")
                failing = False

    async def poll(self) -> None:
        """One round: read the log once for every hub and the token deletions, then heal."""
        ledgers = [
            (follower, ledger)
            for follower in list(self.followers)
            if (ledger := follower.catchup_ledger()) is not None
        ]
        since: Snapshot | datetime = self.tokens_known or (self.started_at - FIRST_POLL_LOOKBACK)
        result = await db_call(
            read_log, [(f.account_id, ledger.known) for f, ledger in ledgers], since
        )
        self.polls += 1
        # Sessions first: a revocation must not wait for reloads.
        self.tokens_known = result.snapshot
        await self._end_sessions(result.ends)
        heals = []
        for follower, ledger in ledgers:
            # A hub that reloaded (or closed) meanwhile has a new ledger: this poll is not for it.
            if follower not in self.followers or follower.catchup_ledger() is not ledger:
                continue
            missing = ledger.check(result.committed.get(follower.account_id, ()), result.snapshot)
            if missing:
                logger.warning(
                    "account %s: %d committed transaction(s) never arrived on the device stream;"
                    " reloading",
                    follower.account_id,
                    len(missing),
                )
                heals.append(_heal(follower, ledger, missing))
        await asyncio.gather(*heals)  # the hubs' reloads side by side

    async def _end_sessions(self, ends: list[str]) -> None:
        now = time.monotonic()
        for end, until in list(self.ended.items()):
            if until < now:
                del self.ended[end]
        closing: dict[object, SessionClose] = {}
        for end in ends:
            self.ended[end] = now + END_MEMORY_SECONDS[end.partition(":")[0]]
            sessions = self.sessions.pop(end, {})
            if sessions:
                logger.info("%s ended: closing %d socket(s)", end, len(sessions))
            closing.update(sessions)
        for close in closing.values():  # each socket once; it unregisters as it closes
            try:
                await close()
            except Exception:
                logger.exception("could not close a session that ended")


async def _heal(follower: Follower, ledger: Ledger, missing: frozenset[int]) -> None:
    try:
        await follower.catchup_missed(ledger, missing)
    except Exception as exc:  # the next poll finds it missing again
        if outage.is_outage(exc):  # a store is down: its recovery reloads the hub anyway
            outage.log_outage(logger, f"account {follower.account_id}: catch-up", exc)
        else:
            logger.exception("account %s: catch-up failed", follower.account_id)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Catchup] = (
    weakref.WeakKeyDictionary()
)


def of_loop() -> Catchup:
    """The catch-up of the running event loop."""
    loop = asyncio.get_running_loop()
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = Catchup(loop)
    return found


def follow(follower: Follower) -> None:
    of_loop().follow(follower)


def unfollow(follower: Follower) -> None:
    of_loop().unfollow(follower)


def register_session(key: object, close: SessionClose, ends: Iterable[str]) -> bool:
    """A socket (`key`) that one of `ends` (`token_end(...)`, `account_end(...)`,
    `relay_end(...)`) closes: `close()` runs when the end is found in the log. False when it
    is known already (close the socket now)."""
    return of_loop().add_session(key, close, ends)


def unregister_session(key: object, ends: Iterable[str]) -> None:
    with contextlib.suppress(RuntimeError):  # no running loop: nothing registered
        of_loop().remove_session(key, ends)
