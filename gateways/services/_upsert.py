"""The upsert-on-connect shared by clients, gateways and relays: the `last_seen_*` columns taken
from the request context, the `INSERT ... ON CONFLICT DO UPDATE` statement, running it, and
recording the insert or update it made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db import IntegrityError, connection, models, transaction

from accounts.auth import Context, Subject
from accounts.validation import MSG_BLANK, MSG_INVALID
from firezone import changes
from gateways.services._common import constraint_error
from gateways.versions import parse_version

M = TypeVar("M", bound=models.Model)

# What every connect refreshes (from `last_seen_values`).
LAST_SEEN_COLUMNS = (
    "last_seen_user_agent",
    "last_seen_remote_ip",
    "last_seen_remote_ip_location_region",
    "last_seen_remote_ip_location_city",
    "last_seen_remote_ip_location_lat",
    "last_seen_remote_ip_location_lon",
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
        "last_seen_remote_ip_location_region": context.remote_ip_location_region,
        "last_seen_remote_ip_location_city": context.remote_ip_location_city,
        "last_seen_remote_ip_location_lat": context.remote_ip_location_lat,
        "last_seen_remote_ip_location_lon": context.remote_ip_location_lon,
        "last_seen_version": version,
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
