"""How an audit-log row reads (issue 18): who, what, when, from where, the changed fields, and a
link to the object while it still exists. Shared by the audit-log page, its export and the
"History" sections of the detail pages; the rows come from `accounts.selectors.audit`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.urls import NoReverseMatch

from accounts.models import Account, AuthProvider
from accounts.selectors.audit import (
    OBJECT_TYPES,
    AuditFilters,
    audit_history,
    existing_objects,
)
from firezone.models import ChangeLog
from firezone.origin import kind_of
from firezone.redaction import REDACTED
from firezone.web.pages import account_url

OPS = {"insert": "Created", "update": "Updated", "delete": "Deleted"}
# Where an object's name is, in the order looked for in its row image.
NAME_KEYS = ("name", "description", "address", "email", "provider_identifier", "type")
# Keys never shown as "changed fields" of an insert or delete (noise, not configuration).
QUIET_KEYS = frozenset({"id", "account_id", "inserted_at", "updated_at", "created_by_subject"})
# The page of each table's objects (URL name); providers are special (adapter in the URL).
OBJECT_PAGES = {
    "resources": "resource",
    "policies": "policy",
    "gateway_groups": "site",
    "actor_groups": "group",
    "actors": "actor",
    "gateways": "gateway",
    "clients": "client",
    "relay_groups": "relay_group",
    "relays": "relay",
}


@dataclass(frozen=True)
class FieldChange:
    key: str
    old: str | None
    new: str | None


@dataclass
class AuditEntry:
    lsn: int
    at: datetime
    kind: str  # actor | api_client | identity_provider | staff | system
    who: str
    who_detail: str  # the job, the staff user, the provider type...
    who_url: str | None
    table: str
    object_type: str
    object_id: str | None
    object_name: str
    object_url: str | None
    op: str
    action: str
    remote_ip: str | None
    user_agent: str | None
    changes: list[FieldChange] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        """The export's shape (CSV columns, one JSON object per line)."""
        return {
            "lsn": self.lsn,
            "at": self.at.isoformat(),
            "who_kind": self.kind,
            "who": self.who,
            "who_detail": self.who_detail,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_name": self.object_name,
            "action": self.action,
            "remote_ip": self.remote_ip,
            "user_agent": self.user_agent,
            "changes": {c.key: {"old": c.old, "new": c.new} for c in self.changes},
        }


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if value == REDACTED:
        return "redacted"
    if isinstance(value, str):
        return value
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def field_changes(row: ChangeLog) -> list[FieldChange]:
    """Updates: only the keys that differ; inserts and deletes: the meaningful keys that are
    set. Redacted values read "redacted" (never the secret, which the log does not hold)."""
    old, new = row.old_data or {}, row.data or {}
    if row.op == "update":
        keys = sorted(
            k for k in old.keys() | new.keys() if k != "updated_at" and old.get(k) != new.get(k)
        )
        return [FieldChange(k, _show(old.get(k)), _show(new.get(k))) for k in keys]
    image = new if row.op == "insert" else old
    keys = sorted(
        k for k, v in image.items() if k not in QUIET_KEYS and v not in (None, "", [], {})
    )
    if row.op == "insert":
        return [FieldChange(k, None, _show(image[k])) for k in keys]
    return [FieldChange(k, _show(image[k]), None) for k in keys]


def object_name(row: ChangeLog) -> str:
    image = row.data or row.old_data or {}
    for key in NAME_KEYS:
        if image.get(key):
            return str(image[key])
    return str(image.get("id") or "")


def _object_url(account: Account, table: str, image: dict[str, Any]) -> str | None:
    object_id = image.get("id")
    try:
        if table == "auth_providers":
            if image.get("adapter") in AuthProvider.SINGLETON_ADAPTERS:
                return account_url(account, "system_provider", id=object_id)
            return account_url(
                account, "identity_provider", adapter=image.get("adapter"), id=object_id
            )
        if table in OBJECT_PAGES:
            return account_url(account, OBJECT_PAGES[table], id=object_id)
    except NoReverseMatch:
        return None
    return None


def present(account: Account, rows: Iterable[ChangeLog]) -> list[AuditEntry]:
    """Entries for rows of one account; the links' existence checked in bulk (one query per
    table of objects named, whatever the number of rows)."""
    rows = list(rows)
    wanted: dict[str, set[str]] = {}
    for row in rows:
        image = row.data or row.old_data or {}
        if image.get("id"):
            wanted.setdefault(row.table, set()).add(str(image["id"]))
        subject = row.subject or {}
        if subject.get("actor_id"):
            wanted.setdefault("actors", set()).add(str(subject["actor_id"]))
        if subject.get("provider_id"):
            wanted.setdefault("auth_providers", set()).add(str(subject["provider_id"]))
    existing = existing_objects(account.pk, wanted)
    return [_entry(account, row, existing) for row in rows]


def present_all(account: Account, rows: Iterable[ChangeLog]) -> Iterable[AuditEntry]:
    """`present` for an export: without links (no existence queries), row by row."""
    for row in rows:
        yield _entry(account, row, None)


def _entry(account: Account, row: ChangeLog, existing: set[tuple[str, str]] | None) -> AuditEntry:
    subject = row.subject or {}
    kind = kind_of(row.subject)
    image = row.data or row.old_data or {}
    object_id = str(image["id"]) if image.get("id") else None
    who_url = None
    if kind == "identity_provider":
        who = subject.get("provider_name") or "Identity provider"
        who_detail = "directory sync"
        pid = subject.get("provider_id")
        if existing is not None and pid and ("auth_providers", str(pid)) in existing:
            # The adapter (part of the provider's URL) is not in the subject: the list page.
            who_url = account_url(account, "identity_providers")
    elif kind == "system":
        who = "system"
        who_detail = subject.get("job") or ""
    elif kind == "staff":
        who = subject.get("staff_user") or "staff"
        who_detail = "Django admin"
    else:
        who = subject.get("actor_name") or "unknown"
        who_detail = "API client" if kind == "api_client" else ""
        aid = subject.get("actor_id")
        if existing is not None and aid and ("actors", str(aid)) in existing:
            name = "api_client" if kind == "api_client" else "actor"
            who_url = account_url(account, name, id=aid)
    if subject.get("staff_user") and kind != "staff":
        who_detail = f"staff user {subject['staff_user']} (Django admin)"
    object_url = None
    if existing is not None and object_id and (row.table, object_id) in existing:
        object_url = _object_url(account, row.table, image)
    return AuditEntry(
        lsn=row.lsn,
        at=row.inserted_at,
        kind=kind,
        who=str(who),
        who_detail=str(who_detail),
        who_url=who_url,
        table=row.table,
        object_type=OBJECT_TYPES.get(row.table, row.table),
        object_id=object_id,
        object_name=object_name(row),
        object_url=object_url,
        op=row.op,
        action=OPS.get(row.op, row.op),
        remote_ip=subject.get("remote_ip"),
        user_agent=subject.get("user_agent"),
        changes=field_changes(row),
    )


@dataclass(frozen=True)
class History:
    entries: list[AuditEntry]
    see_all_url: str


def history(account: Account, table: str, object_id: Any, *, limit: int = 10) -> History:
    """A detail page's "History": the object's last changes and a link to all of them."""
    rows = audit_history(account.pk, table, object_id, limit=limit)
    see_all = account_url(
        account, "settings_audit_log", query={"table": table, "object": str(object_id)}
    )
    return History(entries=present(account, rows), see_all_url=see_all)


def filters_query(filters: AuditFilters) -> dict[str, str]:
    """The filter form's query parameters of `filters` (links to pages and exports)."""
    query = {
        "actor": filters.actor_id or "",
        "table": filters.table or "",
        "object": filters.object_id or "",
        "since": filters.since.isoformat() if filters.since else "",
        "until": filters.until.isoformat() if filters.until else "",
    }
    return {k: v for k, v in query.items() if v}
