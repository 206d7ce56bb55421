"""The upsert-on-connect shared by clients, gateways and relays: the `last_seen_*` columns taken
from the request context, the `INSERT ... ON CONFLICT DO UPDATE` statement, running it, and
recording the insert or update it made.

Clients and gateways use the one-statement form (`upsert_with_previous_sql`,
`run_upsert_with_previous`, `record_connect`): lock, update or insert, and the previous row in a
single round trip, so a known device's reconnect is BEGIN, that statement, COMMIT. A reconnect
that changed only `SEEN_COLUMNS` is no domain change: no change-log row, nothing for devices,
only a `publish_seen` event for the admin pages on `portal.<account_id>`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from django.db import IntegrityError, connection, models, transaction

from accounts.auth import Context, Subject
from accounts.validation import MSG_BLANK, MSG_INVALID
from firezone import changes
from firezone.models import LAST_SEEN_LOCATION
from firezone.versions import parse_version
from gateways.models import random_psk_base
from gateways.services._common import constraint_error, length_errors, public_key_errors

M = TypeVar("M", bound=models.Model)

# What every connect refreshes (from `last_seen_values`).
LAST_SEEN_COLUMNS = (
    "last_seen_user_agent",
    "last_seen_remote_ip",
    *LAST_SEEN_LOCATION,
    "last_seen_version",
)


def last_seen_values(context: Context, errors: dict[str, list[str]]) -> dict[str, Any]:
    """The `last_seen_*` columns from the request context; the version comes from the user agent
    ("is invalid" on `last_seen_user_agent` when it names no Firezone component)."""
    user_agent = (context.user_agent or "")[:255]
    version = parse_version(user_agent)
    if version is None:
        errors.setdefault("last_seen_user_agent", []).append(MSG_INVALID)
    if not context.remote_ip:
        errors.setdefault("last_seen_remote_ip", []).append(MSG_BLANK)
    return {
        "last_seen_user_agent": user_agent,
        "last_seen_remote_ip": context.remote_ip,
        **context.last_seen_location(),
        "last_seen_version": version,
    }


# What a gateway or client (`TunnelDevice`) sends on connect, with the id and PSK seed an insert
# takes (`tunnel_device_values`).
TUNNEL_DEVICE_COLUMNS = ("id", "external_id", "name", "public_key", "psk_base")


def tunnel_device_values(
    *,
    external_id: str,
    name: str | None,
    default_name: Callable[[], str],
    public_key: str,
    errors: dict[str, list[str]],
) -> dict[str, Any]:
    """The `TUNNEL_DEVICE_COLUMNS` of a connecting gateway or client: its external id and name
    stripped (`default_name()` when it sent none), a new id and PSK seed for the insert; the
    messages of invalid values go to `errors`."""
    external_id = (external_id or "").strip()
    errors["external_id"] = length_errors(external_id)
    name = default_name() if name is None else name.strip()
    errors["name"] = length_errors(name)
    errors["public_key"] = public_key_errors(public_key)
    return {
        "id": uuid.uuid4(),
        "external_id": external_id,
        "name": name,
        "public_key": public_key,
        "psk_base": random_psk_base(),
    }


def upsert_sql(
    *,
    table: str,
    alias: str,
    columns: Iterable[str],
    conflict: str,
    updated: Iterable[str],
    extra_set: Iterable[str] = (),
) -> str:
    """`INSERT INTO table AS alias` of `columns` (as `%(column)s` parameters) plus `last_seen_at`,
    `inserted_at` and `updated_at` set to now(); on a `conflict` (the target, e.g. `(a, b)`) the
    `updated` columns, `last_seen_at` and `updated_at` take the new values and `extra_set`
    clauses (which may use `alias` for the current row) are added. Returns the row's id."""
    columns = tuple(columns)
    assignments = [f"{col} = EXCLUDED.{col}" for col in (*updated, "last_seen_at", "updated_at")]
    return f"""
INSERT INTO {table} AS {alias}
    ({", ".join(columns)}, last_seen_at, inserted_at, updated_at)
VALUES ({", ".join(f"%({col})s" for col in columns)}, now(), now(), now())
ON CONFLICT {conflict} DO UPDATE SET
    {", ".join((*assignments, *extra_set))}
RETURNING id
"""  # noqa: S608 (constant identifiers only; values are parameters)


def run_upsert(
    model: type[M],
    sql: str,
    params: Mapping[str, Any],
    *,
    constraints: Mapping[str, tuple[str, str]] | None = None,
) -> M:
    """Run an `upsert_sql` statement and return the row it wrote. In a savepoint, so a unique
    index of `constraints` (name → field, message) becomes that field error."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            pk = cursor.fetchone()[0]
    except IntegrityError as exc:
        if (error := constraint_error(exc, constraints or {})) is None:
            raise
        raise error from exc
    return model._default_manager.get(pk=pk)


def record_upsert(
    old_image: dict[str, Any] | None,
    obj: models.Model,
    attempted_id: Any,
    *,
    subject: Subject | None = None,
) -> None:
    """Record what an upsert did: `old_image` is the row locked before it (None if there was
    none) and `attempted_id` the id the INSERT proposed."""
    if old_image is None:
        if obj.pk == attempted_id:
            changes.inserted(obj, subject=subject)
        # else: created by a concurrent connect, which recorded the insert.
    else:
        changes.updated(old_image, obj, subject=subject)


# --- the connect path: one statement, the previous row included --------------------------------

# What changes on every reconnect: a row whose other columns are unchanged is not a domain change
# (no change-log row, nothing for devices), only news for the admin pages (`publish_seen`).
SEEN_COLUMNS = frozenset({*LAST_SEEN_COLUMNS, "last_seen_at", "updated_at"})

_EXCLUDED = re.compile(r"\bEXCLUDED\.(\w+)")


def upsert_with_previous_sql(
    *,
    model: type[models.Model],
    alias: str,
    columns: Iterable[str],
    key: Iterable[str],
    updated: Iterable[str],
    extra_set: Iterable[str] = (),
) -> str:
    """`upsert_sql` as one statement that also returns the row as it was before.

    An existing row (`key` columns equal to their parameters) is locked and updated: the
    `updated` columns, `last_seen_at` and `updated_at` take the new values and `extra_set`
    clauses (written as for `upsert_sql`: `EXCLUDED.<col>` is the new value, `alias` the current
    row) are added. Otherwise the row is inserted; a concurrent insert is caught by
    `ON CONFLICT (key)` and updated the same way. Returns every column of the row, then every
    column of the previous row (NULLs when there was none); see `run_upsert_with_previous`.
    """
    table = model._meta.db_table
    columns, key, updated, extra_set = tuple(columns), tuple(key), tuple(updated), tuple(extra_set)
    fields = [f.column for f in model._meta.concrete_fields]
    row = ", ".join(f"{alias}.{col}" for col in fields)
    previous = ", ".join(f"previous.{col} AS previous_{col}" for col in fields)
    # The previous row's columns are typed by the UPDATE branch; the NULLs of the INSERT
    # branch take those types.
    nulls = ", ".join("NULL" for _ in fields)
    new_values = [f"{col} = %({col})s" for col in updated]
    excluded = [f"{col} = EXCLUDED.{col}" for col in updated]
    stamps = ["last_seen_at = now()", "updated_at = now()"]
    update_set = [*new_values, *stamps, *(_EXCLUDED.sub(r"%(\1)s", e) for e in extra_set)]
    conflict_set = [*excluded, *stamps, *extra_set]
    return f"""
WITH updated AS (
    UPDATE {table} AS {alias}
    SET {", ".join(update_set)}
    FROM (
        SELECT * FROM {table}
        WHERE {" AND ".join(f"{col} = %({col})s" for col in key)}
        FOR UPDATE
    ) AS previous
    WHERE {alias}.id = previous.id
    RETURNING {row}, {previous}
), inserted AS (
    INSERT INTO {table} AS {alias}
        ({", ".join(columns)}, last_seen_at, inserted_at, updated_at)
    SELECT {", ".join(f"%({col})s" for col in columns)}, now(), now(), now()
    WHERE NOT EXISTS (SELECT 1 FROM updated)
    ON CONFLICT ({", ".join(key)}) DO UPDATE SET {", ".join(conflict_set)}
    RETURNING {row}
)
SELECT * FROM updated
UNION ALL
SELECT inserted.*, {nulls} FROM inserted
"""  # noqa: S608 (constant identifiers only; values are parameters)


def _load(model: type[M], values: Sequence[Any]) -> M:
    """A model instance from a row of all its concrete columns, converted like the ORM does."""
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        col = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            value = convert(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def run_upsert_with_previous(
    model: type[M],
    sql: str,
    params: Mapping[str, Any],
    *,
    constraints: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[M, M | None]:
    """Run an `upsert_with_previous_sql` statement: the row it wrote and the row as it was
    before (None when it inserted, or when a concurrent connect had just inserted it).

    No savepoint (it would cost two more statements on every connect): a unique index of
    `constraints` (name → field, message) becomes that field error, raised so that the caller's
    `atomic` block, whose transaction the failed statement broke, is rolled back.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            values = cursor.fetchone()
    except IntegrityError as exc:
        if (error := constraint_error(exc, constraints or {})) is None:
            raise
        raise error from exc
    fields = model._meta.concrete_fields
    count = len(fields)
    row = _load(model, values[:count])
    # The previous row's columns are NULLs when there was none, its primary key included.
    previous_pk = values[count + fields.index(model._meta.pk)]
    previous = _load(model, values[count:]) if previous_pk is not None else None
    return row, previous


def publish_seen(row: models.Model, old: dict[str, Any], new: dict[str, Any]) -> None:
    """A reconnect that changed only `SEEN_COLUMNS`: no change-log row and nothing for devices,
    but the admin pages showing the row hear of it (the `domain.change` shape, `lsn` 0 = not in
    the change log), on `portal.<account_id>` only, after commit."""
    account_id = getattr(row, "account_id", None)
    if account_id is None:
        return
    change = changes.Change(
        lsn=0,
        table=changes.table_of(row) or row._meta.db_table,
        op="update",
        account_id=str(account_id),
        old=old,
        new=new,
    )
    changes.send_seen_after_commit(changes.portal_group(account_id), change.as_message())


def record_connect(
    previous: models.Model | None,
    row: models.Model,
    attempted_id: Any,
    *,
    subject: Subject | None = None,
) -> None:
    """Record what a `run_upsert_with_previous` did: an insert, an update of more than
    `SEEN_COLUMNS` (change log + account group, as any change), or a reconnect that only
    refreshed them (`publish_seen`)."""
    if previous is None:
        if row.pk == attempted_id:
            changes.inserted(row, subject=subject)
        # else: created by a concurrent connect, which recorded the insert.
        return
    old = changes.row_image(previous)
    new = changes.row_image(row)
    if any(old.get(k) != new.get(k) for k in old.keys() | new.keys() if k not in SEEN_COLUMNS):
        changes.updated(old, row, subject=subject)
    else:
        publish_seen(row, old, new)
