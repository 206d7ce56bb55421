"""One path for every change: record it in the change log and publish it after commit.

A service calls `record(...)` inside its transaction. The change-log row is written in the same
transaction (so it rolls back with it); the event is handed to the channel layer only from
`transaction.on_commit`, so a socket never sees uncommitted state, and nothing is sent on rollback.
The change-log `lsn` (a database sequence) orders events, so consumers can drop stale or duplicate
deliveries, like the WAL LSN of the original.

The change log is the source of truth, Redis the fast path: a publish that fails (Redis
unreachable from this process) is only logged here, never raised into the committed write; every
server process reads the log once a second (`firezone.catchup`) and heals what its sockets did not
get (an account hub reloads, a deleted token's sockets close).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction

from firezone import outage, redaction, stream
from firezone.models import ChangeLog
from firezone.origin import current as current_origin
from firezone.origin import origin as origin  # `changes.origin(...)`, re-exported

if TYPE_CHECKING:
    from accounts.auth import Subject

logger = logging.getLogger(__name__)

Op = Literal["insert", "update", "delete"]
EVENT_TYPE = "domain.change"


def account_group(account_id: Any) -> str:
    return f"account.{account_id}"


def portal_group(account_id: Any) -> str:
    """The admin pages' group of an account for row news that is not in the change log (a
    device's reconnect refreshing its last-seen columns)."""
    return f"portal.{account_id}"


def session_group(token_id: Any) -> str:
    """Every socket or page authenticated with a token listens here for `disconnect`."""
    return f"session.{token_id}"


# Rows that also publish to a group of their own, `<prefix>.<id>`: a relay socket listens there
# for the deletion of its relay or relay group. Global relays and groups have no account, so the
# account group alone would never carry their changes.
OWN_GROUP_PREFIXES: dict[str, str] = {"relays": "relay", "relay_groups": "relay_group"}


# (table, op) of rows that are logged but never published on the device stream: flows reach the
# gateway from the client socket (§4.1), token deletions go to the token's session group only.
# The catch-up (`firezone.catchup`) expects a stream message for every other row of an account.
NOT_STREAMED: frozenset[tuple[str, str]] = frozenset({("flows", "insert"), ("tokens", "delete")})


def own_group(table: str, row_id: Any) -> str | None:
    prefix = OWN_GROUP_PREFIXES.get(table)
    return f"{prefix}.{row_id}" if prefix and row_id else None


def row_image(instance: models.Model) -> dict[str, Any]:
    """A JSON-safe dict of the row's columns (FKs as `<name>_id`), like a WAL row image."""
    # Binary columns are secrets (the PSK seed of clients and gateways): never logged or sent;
    # secret JSON keys and columns are redacted (firezone.redaction).
    data = {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if not isinstance(f, models.BinaryField)
    }
    return redaction.redact(json.loads(json.dumps(data, cls=DjangoJSONEncoder)))


@dataclass(frozen=True)
class Change:
    lsn: int
    table: str
    op: Op
    account_id: str | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    # The writing transaction (`pg_current_xact_id()`), so a reader of a database snapshot can
    # tell whether the change is already in it. None for changes not in the change log.
    xid: int | None = None

    def changed(self, *fields: str) -> bool:
        old, new = self.old or {}, self.new or {}
        return any(old.get(f) != new.get(f) for f in fields)

    def as_message(self) -> dict[str, Any]:
        return {"type": EVENT_TYPE, "change": asdict(self)}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Change:
        return cls(**message["change"])

    @classmethod
    def from_entry(cls, entry: ChangeLog) -> Change:
        """The change a change-log row records."""
        return cls(
            lsn=entry.lsn,
            table=entry.table,
            op=entry.op,  # type: ignore[arg-type]
            account_id=str(entry.account_id) if entry.account_id else None,
            old=entry.old_data,
            new=entry.data,
            xid=entry.xid,
        )


def subject_kind(actor_type: str | None) -> str:
    """The `kind` of a subject image: API clients apart from the people and service accounts."""
    return "api_client" if actor_type == "api_client" else "actor"


def _subject_image(subject: Subject | None) -> dict[str, Any] | None:
    """Who wrote the row: the subject (its actor, token and request context — never a secret),
    else the innermost `origin(...)` (a sync, a job, the staff admin), else None ("system")."""
    if subject is None:
        return current_origin()
    identity = subject.identity
    context = subject.context
    return {
        "kind": subject_kind(subject.actor.type),
        "actor_id": str(subject.actor_id),
        "actor_name": subject.actor.name,
        "actor_type": subject.actor.type,
        "identity_id": str(identity.pk) if identity is not None else None,
        "token_id": str(subject.token_id) if subject.token_id else None,
        "context": context.type,
        "remote_ip": context.remote_ip,
        "user_agent": context.user_agent,
    }


# Spec table names (domain.md §1), used in change-log rows and events, by model label.
TABLES: dict[str, str] = {
    "accounts.account": "accounts",
    "accounts.actor": "actors",
    "accounts.actorgroup": "actor_groups",
    "accounts.actorgroupmembership": "actor_group_memberships",
    "accounts.authprovider": "auth_providers",
    "accounts.authidentity": "auth_identities",
    "accounts.token": "tokens",
    "gateways.site": "gateway_groups",
    "gateways.gateway": "gateways",
    "gateways.relaygroup": "relay_groups",
    "gateways.relay": "relays",
    "gateways.client": "clients",
    "resources.resource": "resources",
    "resources.resourceconnection": "resource_connections",
    "resources.policy": "policies",
    "resources.flow": "flows",
}


def table_of(model: type[models.Model] | models.Model) -> str | None:
    """The original's table name of a model (domain.md §0), or None for rows that are not
    tracked (addresses, logs)."""
    return TABLES.get(model._meta.label_lower)


def _account_id_of(instance: models.Model) -> Any:
    if instance._meta.label_lower == "accounts.account":
        return instance.pk
    return getattr(instance, "account_id", None)


def inserted(instance: models.Model, *, subject: Subject | None = None) -> Change:
    return record(
        op="insert",
        table=table_of(instance) or instance._meta.db_table,
        account_id=_account_id_of(instance),
        new=instance,
        subject=subject,
    )


_INSERT_LOGGED_SQL = """
WITH row AS (INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING 1)
INSERT INTO {log} (account_id, "table", op, old_data, data, subject, vsn, inserted_at)
SELECT %s, %s, 'insert', NULL, %s, %s, 0, now() FROM row
RETURNING lsn, xid
"""


def insert_logged(instance: models.Model, *, subject: Subject | None = None) -> Change:
    """INSERT a row and its change-log row in ONE statement, for rows that are logged but never
    published (flows: the client tells the gateway itself, §4.1). Outside a transaction the
    statement commits by itself, foreign keys included (IntegrityError when a referenced row is
    gone). The row's image is the one `record` would log."""
    from psycopg.types.json import Jsonb

    meta = instance._meta
    fields = list(meta.concrete_fields)
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    columns = [f.column for f in fields if f.column]  # every concrete field has a column
    quote = connection.ops.quote_name
    sql = _INSERT_LOGGED_SQL.format(
        table=quote(meta.db_table),
        columns=", ".join(quote(column) for column in columns),
        values=", ".join(["%s"] * len(fields)),
        log=quote(ChangeLog._meta.db_table),
    )
    table = table_of(instance) or meta.db_table
    account_id = _account_id_of(instance)
    image = row_image(instance)
    subject_image = _subject_image(subject)
    with connection.cursor() as cursor:
        # psycopg adapts Jsonb itself: Django's parameter types do not list it.
        params: list[Any] = [*values, account_id, table, Jsonb(image), Jsonb(subject_image)]
        cursor.execute(sql, params)
        lsn, xid = cursor.fetchone()
    instance._state.adding, instance._state.db = False, "default"
    return Change(
        lsn=lsn,
        table=table,
        op="insert",
        account_id=str(account_id) if account_id else None,
        old=None,
        new=image,
        xid=xid,
    )


def updated(
    old: dict[str, Any], instance: models.Model, *, subject: Subject | None = None
) -> Change | None:
    """Record an update from the row image taken before the change; nothing if nothing changed."""
    new = row_image(instance)
    if {k: v for k, v in old.items() if k != "updated_at"} == {
        k: v for k, v in new.items() if k != "updated_at"
    }:
        return None
    return record(
        op="update",
        table=table_of(instance) or instance._meta.db_table,
        account_id=_account_id_of(instance),
        old=old,
        new=new,
        subject=subject,
    )


def delete(
    target: models.Model | models.QuerySet | Iterable[models.Model],
    *,
    subject: Subject | None = None,
) -> list[Change]:
    """Hard-delete rows *and everything the delete cascades to*, recording each tracked row.

    The database cascades too (`DbOnDelete`), but rows removed there would be invisible to
    sockets; Django's collector lists the whole cascade first so every deleted membership, flow,
    connection and token gets its own change (and every deleted token closes its sessions),
    as the original's WAL consumer would see them. Children are recorded before parents.
    """
    from django.db.models.deletion import Collector

    if isinstance(target, models.Model):
        objs: list[models.Model] = [target]
    else:
        objs = list(target)
    if not objs:
        return []
    collector = Collector(using="default")
    collector.collect(objs)
    rows: list[models.Model] = []
    for qs in collector.fast_deletes:
        rows.extend(qs)
    for instances in collector.data.values():
        rows.extend(instances)
    # Dependants first (flows, memberships, tokens...) so consumers see deletions in a safe order.
    roots = {(type(o), o.pk) for o in objs}
    rows.sort(key=lambda r: (type(r), r.pk) in roots)
    # The images first (the delete below clears the primary keys of the root objects), then
    # delete, then record: the change numbers are taken while the deleted rows are locked, so a
    # concurrent update of one of them always carries a smaller `lsn` than its deletion (readers
    # keep the image with the highest `lsn` of each row).
    seen: set[tuple[type, Any]] = set()
    deleted: list[tuple[str, Any, Any, dict[str, Any] | None]] = []
    for row in rows:
        key = (type(row), row.pk)
        if key in seen:
            continue
        seen.add(key)
        table = table_of(row)
        if table is not None:
            deleted.append((table, row.pk, _account_id_of(row), row_image(row)))
    collector = Collector(using="default")
    collector.collect(objs)
    collector.delete()
    recorded: list[Change] = []
    for table, pk, account_id, image in deleted:
        if table == "tokens":
            disconnect_session(pk)
        recorded.append(
            record(
                op="delete",
                table=table,
                account_id=account_id,
                old=image,
                subject=subject,
                publish=table != "tokens",  # token deletes go to its session only (§4.1)
            )
        )
    return recorded


def record(
    *,
    op: Op,
    table: str,
    account_id: Any,
    old: models.Model | dict[str, Any] | None = None,
    new: models.Model | dict[str, Any] | None = None,
    subject: Subject | None = None,
    publish: bool = True,
    extra_groups: Iterable[str] = (),
) -> Change:
    """Write the change-log row and publish the change to the account group after commit."""

    old_data = old if isinstance(old, dict) or old is None else row_image(old)
    new_data = new if isinstance(new, dict) or new is None else row_image(new)
    entry = ChangeLog.objects.create(
        account_id=account_id,
        table=table,
        op=op,
        old_data=old_data,
        data=new_data,
        subject=_subject_image(subject),
    )
    change = Change.from_entry(entry)
    groups = [account_group(account_id)] if (publish and account_id) else []
    if publish and (own := own_group(table, (new_data or old_data or {}).get("id"))):
        groups.append(own)
    groups.extend(extra_groups)
    if publish or groups:
        transaction.on_commit(
            lambda: _collect(change, groups, to_stream=publish and bool(account_id)), robust=True
        )
    return change


RECORD_BATCH = 2000
T = TypeVar("T")


def _batches(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def record_many(
    rows: Iterable[tuple[Op, str, Any, dict[str, Any] | None, dict[str, Any] | None]],
    *,
    subject: Subject | None = None,
) -> list[Change]:
    """`record` for many rows at once: `(op, table, account_id, old image, new image)` each.

    The change-log rows go in with batched INSERTs and ONE commit hook collects them all, so a
    directory sync writing thousands of rows costs a few statements instead of one per row.
    Published like `record(publish=True)`: to the account group and the device stream (rows of
    tables with a group of their own go there too)."""
    subject_image = _subject_image(subject)
    recorded: list[Change] = []
    # In batches: a batch's model instances go once inserted, only the changes stay (a first
    # sync of a 10,000-user directory records ~70,000 rows).
    for batch in _batches(rows, RECORD_BATCH):
        entries = [
            ChangeLog(
                account_id=account_id,
                table=table,
                op=op,
                old_data=old,
                data=new,
                subject=subject_image,
            )
            for op, table, account_id, old, new in batch
        ]
        ChangeLog.objects.bulk_create(entries)
        recorded.extend(Change.from_entry(entry) for entry in entries)
    if not recorded:
        return []

    def collect() -> None:
        for change in recorded:
            groups = [account_group(change.account_id)] if change.account_id else []
            if own := own_group(change.table, (change.new or change.old or {}).get("id")):
                groups.append(own)
            _collect(change, groups, to_stream=bool(change.account_id))

    transaction.on_commit(collect, robust=True)
    return recorded


# --- publishing: one batch per committed transaction ----------------------------------------------
#
# Each recorded change registers its own on_commit hook (so a rolled-back savepoint drops
# exactly its changes); the hooks only collect. `firezone.dbbackend` publishes the collection
# once Django has run all hooks of the commit: ONE device-stream message per account and
# transaction (a 10,000-row directory sync is one message, applied by each server process once),
# and the portal's account group gets at most `PORTAL_CHANGES_PER_TABLE` change events per table
# (its pages re-query).

PORTAL_CHANGES_PER_TABLE = 50


Collected = list[tuple[Change, list[str], bool]]


class _Pending(threading.local):
    def __init__(self) -> None:
        # One collection per run of commit hooks; nested when a hook commits a transaction of
        # its own (its changes are then published as a message of their own).
        self.stack: list[Collected] = []


_pending = _Pending()


def _collect(change: Change, groups: list[str], *, to_stream: bool) -> None:
    if _pending.stack:
        _pending.stack[-1].append((change, groups, to_stream))
    else:  # autocommit: the write is already committed, nothing else will come
        try:
            _publish([(change, groups, to_stream)])
        except Exception as exc:
            _publish_failed("could not publish a committed change", exc)


@contextlib.contextmanager
def collecting() -> Iterator[None]:
    """Around one run of commit hooks (the database backend): publish what they collected."""
    _pending.stack.append([])
    try:
        yield
    finally:
        collected = _pending.stack.pop()
        try:
            _publish(collected)
        except Exception as exc:  # the write is committed: a publish failure must not surface
            _publish_failed(f"could not publish {len(collected)} committed changes", exc)


def _publish(collected: Collected) -> None:
    if not collected:
        return
    streams: dict[tuple[str, int | None], list[Change]] = {}  # (account, transaction)
    group_messages: list[tuple[str, dict[str, Any]]] = []
    per_table: dict[tuple[str, str], int] = {}
    for change, groups, to_stream in collected:
        if to_stream and change.account_id:
            streams.setdefault((change.account_id, change.xid), []).append(change)
        for group in groups:
            key = (group, change.table)
            per_table[key] = per_table.get(key, 0) + 1
            if per_table[key] <= PORTAL_CHANGES_PER_TABLE:
                group_messages.append((group, change.as_message()))
    for (account_id, xid), batch in streams.items():
        try:
            if len(batch) > stream.MAX_MESSAGE_CHANGES:
                # Far over the message size anyway: announce a reload without encoding it all.
                stream.publish_reload(account_id, xid)
                continue
            stream.publish(account_id, xid, [asdict(c) for c in batch])
        except Exception as exc:  # a publish failure must not undo a committed write
            _publish_failed(f"could not publish {len(batch)} changes of account {account_id}", exc)
    if group_messages:
        _group_send_all(group_messages)


def _publish_failed(what: str, exc: Exception) -> None:
    """Redis down is an outage, not a bug: one line, no traceback (the catch-up heals the stream
    from the change log, firezone/catchup.py). Anything else keeps its traceback."""
    if outage.is_outage(exc):
        outage.log_outage(logger, what, exc)
    else:
        logger.error(what, exc_info=exc)


def _sender(messages: list[tuple[str, dict[str, Any]]]) -> Callable[[], Coroutine[Any, Any, None]]:
    async def send_all() -> None:
        layer = get_channel_layer()
        for group, message in messages:
            try:
                await layer.group_send(group, message)
            except Exception as exc:  # a publish failure must not undo a committed write
                _publish_failed(f"could not publish to {group}", exc)

    return send_all


def _group_send_all(messages: list[tuple[str, dict[str, Any]]]) -> None:
    _run_soon(_sender(messages))


def _start_on_loop(loop: asyncio.AbstractEventLoop, messages: list[tuple[str, dict]]) -> None:
    """On the loop's own thread: start the sends as a task."""
    task = loop.create_task(_sender(messages)())
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


_in_flight: set[asyncio.Task] = set()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The server process's event loop, when this thread does database work for it (a thread
    of `database_sync_to_async`/`firezone.db`); None elsewhere."""
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if (
        loop is not None
        and getattr(local, "main_event_loop_pid", None) == os.getpid()
        and loop.is_running()
    ):
        return loop
    return None


def _run_soon(send_all: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the sends. In a server process, from a thread doing a socket's or a page's database
    work, they are handed to the process's event loop and not waited for: waiting would hold the
    database thread for a Redis round trip through a busy loop (the sends keep their order, the
    write is committed either way). Elsewhere (tests, Celery, commands) they run before return."""
    loop = _server_loop()
    if loop is not None:

        def start() -> None:
            task = loop.create_task(send_all())
            _in_flight.add(task)
            task.add_done_callback(_in_flight.discard)

        loop.call_soon_threadsafe(start)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(send_all)()
        return
    # This thread runs an event loop of its own around sync code (a sync Playwright test):
    # async_to_sync refuses that, so the sends run on a helper thread, waited for.
    helper = threading.Thread(target=lambda: asyncio.run(send_all()), daemon=True)
    helper.start()
    helper.join()


def send_after_commit(groups: Iterable[str], message: dict[str, Any]) -> None:
    groups = list(groups)
    transaction.on_commit(lambda: send_now(groups, message), robust=True)


# At most one "seen" event per portal group and second, the latest one: devices reconnecting at
# hundreds per second must not turn into as many Redis round trips for pages that re-query
# anyway. Only in a server process (the event loop keeps the trailing send); elsewhere each is
# sent.
SEEN_EVENTS_INTERVAL = 1.0
_seen_last: dict[str, float] = {}
_seen_pending: dict[str, dict[str, Any]] = {}


def send_seen_after_commit(group: str, message: dict[str, Any]) -> None:
    """`send_after_commit` for news that only the latest instance of matters."""

    def send() -> None:
        loop = _server_loop()
        if loop is None:
            send_now([group], message)
            return
        loop.call_soon_threadsafe(_seen_on_loop, loop, group, message)

    transaction.on_commit(send, robust=True)


def _seen_on_loop(loop: asyncio.AbstractEventLoop, group: str, message: dict[str, Any]) -> None:
    wait = _seen_last.get(group, float("-inf")) + SEEN_EVENTS_INTERVAL - loop.time()
    if wait <= 0:
        _seen_last[group] = loop.time()
        _start_on_loop(loop, [(group, message)])
        return
    if group not in _seen_pending:
        loop.call_later(wait, _seen_flush, loop, group)
    _seen_pending[group] = message  # the latest wins


def _seen_flush(loop: asyncio.AbstractEventLoop, group: str) -> None:
    message = _seen_pending.pop(group, None)
    if message is not None:
        _seen_last[group] = loop.time()
        _start_on_loop(loop, [(group, message)])


def send_now(groups: Iterable[str], message: dict[str, Any]) -> None:
    _group_send_all([(group, message) for group in groups])


def disconnect_session(token_id: Any) -> None:
    """Close every socket authenticated with this token, once the deletion is committed."""
    send_after_commit([session_group(token_id)], {"type": "session.disconnect"})
