"""The audit log (issue 18): an account's configuration changes, read from the change log.

Every write records a `firezone.models.ChangeLog` row; not every row is a *configuration change*.
The rule (`CONFIG_CHANGE_SQL`), written down once:

A row is left out (a device event: it is on the clients' and actors' pages) when

1. it is a flow (`flows`): a client's access to a resource, not a change of the configuration;
2. its subject's context is a device socket (`client`, `gateway_group`, `relay_group`): what a
   client, gateway or relay wrote about itself (connect upserts, last seen);
3. it is a session token (`tokens` of type `browser`, `client` or `email`): sign-ins, their
   attempts and sign-outs, and the expiry job's clean-up. An admin revoking *someone else's*
   session (a delete whose subject is another actor) stays: that is a change;
4. it is a client insert (only a connecting client creates its row), or a client update written
   by the system (NULL or `kind` system) or by the client's own actor without a context (rows
   older than the subject's `context`: the connect upsert);
5. it is a gateway or relay insert or update by the system (NULL or `kind` system: the connect
   upserts);
6. it is an update whose only differing keys are bookkeeping (`BOOKKEEPING_KEYS`: `updated_at`,
   the `last_seen_*` columns, an identity's `provider_state`, a token's remaining attempts).

Everything else stays, whoever wrote it: an admin deleting a client, revoking a token, creating
an API token or a gateway token, a directory sync, a job, a Django admin write.

Reads accept both shapes of `subject` (the shared contract): NULL is the system; without a
`kind`, an `actor_type` of `api_client` is an API client and anything else an actor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from firezone.changes import TABLES
from firezone.models import AUDIT_OBJECT_ID, LAST_SEEN_LOCATION, ChangeLog

DEVICE_CONTEXTS = ("client", "gateway_group", "relay_group")
SESSION_TOKEN_TYPES = ("browser", "client", "email")
BOOKKEEPING_KEYS = [
    "updated_at",
    "last_seen_at",
    "last_seen_user_agent",
    "last_seen_remote_ip",
    "last_seen_version",
    *LAST_SEEN_LOCATION,
    "provider_state",
    "remaining_attempts",
]

# NULL-safe: a clause that is NULL (a missing key) counts as "not a device event".
CONFIG_CHANGE_SQL = """NOT COALESCE((
  "table" = 'flows'
  OR subject->>'context' = ANY(%s::text[])
  OR ("table" = 'tokens'
      AND COALESCE(data->>'type', old_data->>'type') = ANY(%s::text[])
      AND NOT (op = 'delete' AND subject->>'actor_id' IS NOT NULL
               AND subject->>'actor_id' IS DISTINCT FROM old_data->>'actor_id'))
  OR ("table" = 'clients' AND op = 'insert')
  OR ("table" = 'clients' AND op = 'update'
      AND (subject IS NULL OR subject->>'kind' = 'system'
           OR (NOT jsonb_exists(subject, 'context')
               AND subject->>'actor_id' = data->>'actor_id')))
  OR ("table" IN ('gateways', 'relays') AND op IN ('insert', 'update')
      AND (subject IS NULL OR subject->>'kind' = 'system'))
  OR (op = 'update' AND (data - %s::text[]) = (old_data - %s::text[]))
), false)"""

# Human names of the tables an admin can see in the log.
OBJECT_TYPES: dict[str, str] = {
    "accounts": "Account",
    "actors": "Actor",
    "actor_groups": "Group",
    "actor_group_memberships": "Group membership",
    "auth_providers": "Identity provider",
    "auth_identities": "Identity",
    "tokens": "Token",
    "gateway_groups": "Site",
    "gateways": "Gateway",
    "relay_groups": "Relay group",
    "relays": "Relay",
    "clients": "Client",
    "resources": "Resource",
    "resource_connections": "Resource site",
    "policies": "Policy",
}
MODEL_OF_TABLE: dict[str, str] = {table: label for label, table in TABLES.items()}


def config_changes(account_id: Any) -> QuerySet[ChangeLog]:
    """The account's configuration changes (the rule above); never another account's rows."""
    config_only = RawSQL(  # noqa: S611 - a fixed statement, the values are parameters
        CONFIG_CHANGE_SQL,
        [list(DEVICE_CONTEXTS), list(SESSION_TOKEN_TYPES), BOOKKEEPING_KEYS, BOOKKEEPING_KEYS],
        output_field=BooleanField(),
    )
    return ChangeLog.objects.filter(account_id=account_id).filter(config_only)


@dataclass(frozen=True)
class AuditFilters:
    actor_id: str | None = None
    table: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_entries(account_id: Any, filters: AuditFilters) -> QuerySet[ChangeLog]:
    """The filtered configuration changes, newest first (the page's and the export's order)."""
    rows = config_changes(account_id)
    if filters.actor_id:
        rows = rows.filter(subject__actor_id=str(filters.actor_id))
    if filters.table:
        rows = rows.filter(table=filters.table)
    if filters.object_id:
        rows = rows.alias(_object_id=AUDIT_OBJECT_ID).filter(_object_id=str(filters.object_id))
    if filters.since:
        rows = rows.filter(inserted_at__gte=filters.since)
    if filters.until:
        rows = rows.filter(inserted_at__lt=filters.until)
    return rows.order_by("-lsn")


@dataclass(frozen=True)
class AuditPage:
    rows: list[ChangeLog]
    # The `lsn` to pass as `after` (older rows) / `before` (newer rows), None at an end.
    next_after: int | None
    prev_before: int | None


def audit_page(
    account_id: Any,
    filters: AuditFilters,
    *,
    after: int | None = None,
    before: int | None = None,
    size: int = 50,
) -> AuditPage:
    """One page, newest first, next to a keyset position on `lsn` (unique, so the keyset is
    total): `after` walks to older rows, `before` to newer ones. One query."""
    rows = audit_entries(account_id, filters)
    if before is not None:
        found = list(rows.filter(lsn__gt=before).order_by("lsn")[: size + 1])
        more = len(found) > size
        found = found[:size]
        found.reverse()
        return AuditPage(
            rows=found,
            next_after=found[-1].lsn if found else None,
            prev_before=found[0].lsn if found and more else None,
        )
    if after is not None:
        rows = rows.filter(lsn__lt=after)
    found = list(rows[: size + 1])
    more = len(found) > size
    found = found[:size]
    return AuditPage(
        rows=found,
        next_after=found[-1].lsn if found and more else None,
        prev_before=found[0].lsn if found and after is not None else None,
    )


def audit_history(
    account_id: Any, table: str, object_id: Any, *, limit: int = 10
) -> list[ChangeLog]:
    """The last `limit` configuration changes of one object (a detail page's "History")."""
    filters = AuditFilters(table=table, object_id=str(object_id))
    return list(audit_entries(account_id, filters)[:limit])


def audit_export(
    account_id: Any, filters: AuditFilters, *, chunk_size: int = 2000
) -> Iterator[ChangeLog]:
    """Every filtered row in the page's order, read through a server-side cursor in chunks:
    an export of a million rows never holds them all."""
    return audit_entries(account_id, filters).iterator(chunk_size=chunk_size)


def oldest_entry_at(account_id: Any) -> datetime | None:
    first = ChangeLog.objects.filter(account_id=account_id).order_by("lsn").first()
    return first.inserted_at if first else None


def existing_objects(account_id: Any, wanted: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Which of the `{table: ids}` still exist in the account, as `(table, id)`: one query per
    table named, whatever the number of ids (links on a page cost no query per row)."""
    found: set[tuple[str, str]] = set()
    for table, ids in wanted.items():
        if table not in MODEL_OF_TABLE or not ids:
            continue
        ids = {i for i in ids if _is_uuid(i)}  # every tracked row's id is one
        model = apps.get_model(MODEL_OF_TABLE[table])
        scope = {"pk": account_id} if table == "accounts" else {"account_id": account_id}
        for pk in model._default_manager.filter(pk__in=ids, **scope).values_list("pk", flat=True):
            found.add((table, str(pk)))
    return found


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
