"""One path for every change: record it in the change log and publish it after commit.

A service calls `record(...)` inside its transaction. The change-log row is written in the same
transaction (so it rolls back with it); the event is handed to the channel layer only from
`transaction.on_commit`, so a socket never sees uncommitted state, and nothing is sent on rollback.
The change-log `lsn` (a database sequence) orders events, so consumers can drop stale or duplicate
deliveries, like the WAL LSN of the original.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

if TYPE_CHECKING:
    from accounts.auth import Subject

logger = logging.getLogger(__name__)

Op = Literal["insert", "update", "delete"]
EVENT_TYPE = "domain.change"


def account_group(account_id: Any) -> str:
    return f"account.{account_id}"


def session_group(token_id: Any) -> str:
    """Every socket or page authenticated with a token listens here for `disconnect`."""
    return f"session.{token_id}"


# Rows that also publish to a group of their own, `<prefix>.<id>`: a relay socket listens there
# for the deletion of its relay or relay group. Global relays and groups have no account, so the
# account group alone would never carry their changes.
OWN_GROUP_PREFIXES: dict[str, str] = {"relays": "relay", "relay_groups": "relay_group"}


def own_group(table: str, row_id: Any) -> str | None:
    prefix = OWN_GROUP_PREFIXES.get(table)
    return f"{prefix}.{row_id}" if prefix and row_id else None


# Secrets never reach the change log or the channel layer: token hashes and salts, password
# hashes, and the client secrets / OAuth tokens inside provider JSON (adapter_config,
# adapter_state, provider_state). The key stays, so a consumer still sees that it changed.
_SECRET_KEY = re.compile(r"secret|password|hash|salt|(^|_)token$", re.IGNORECASE)
REDACTED = "[redacted]"


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if _SECRET_KEY.search(str(key)) and item else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


def row_image(instance: models.Model | None) -> dict[str, Any] | None:
    """A JSON-safe dict of the row's columns (FKs as `<name>_id`), like a WAL row image."""
    if instance is None:
        return None
    # Binary columns are secrets (the PSK seed of clients and gateways): never logged or sent.
    data = {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if not isinstance(f, models.BinaryField)
    }
    return _redact(json.loads(json.dumps(data, cls=DjangoJSONEncoder)))


@dataclass(frozen=True)
class Change:
    lsn: int
    table: str
    op: Op
    account_id: str | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    def changed(self, *fields: str) -> bool:
        old, new = self.old or {}, self.new or {}
        return any(old.get(f) != new.get(f) for f in fields)

    def as_message(self) -> dict[str, Any]:
        return {"type": EVENT_TYPE, "change": asdict(self)}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Change:
        return cls(**message["change"])


def _subject_image(subject: Subject | None) -> dict[str, Any] | None:
    if subject is None:
        return None
    identity = subject.identity
    return {
        "actor_id": str(subject.actor_id),
        "actor_name": subject.actor.name,
        "actor_type": subject.actor.type,
        "identity_id": str(identity.pk) if identity is not None else None,
        "token_id": str(subject.token_id) if subject.token_id else None,
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
    """The spec table name of a model, or None for rows that are not tracked (addresses, logs)."""
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


def updated(
    old: dict[str, Any], instance: models.Model, *, subject: Subject | None = None
) -> Change | None:
    """Record an update from the row image taken before the change; nothing if nothing changed."""
    new = row_image(instance)
    assert new is not None
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
    seen: set[tuple[type, Any]] = set()
    recorded: list[Change] = []
    for row in rows:
        key = (type(row), row.pk)
        if key in seen:
            continue
        seen.add(key)
        table = table_of(row)
        if table is None:
            continue
        if table == "tokens":
            disconnect_session(row.pk)
        recorded.append(
            record(
                op="delete",
                table=table,
                account_id=_account_id_of(row),
                old=row,
                subject=subject,
                publish=table != "tokens",  # token deletes go to its session only (§4.1)
            )
        )
    collector = Collector(using="default")
    collector.collect(objs)
    collector.delete()
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
    from accounts.models import ChangeLog

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
    change = Change(
        lsn=entry.lsn,
        table=table,
        op=op,
        account_id=str(account_id) if account_id else None,
        old=old_data,
        new=new_data,
    )
    groups = [account_group(account_id)] if (publish and account_id) else []
    if publish and (own := own_group(table, (new_data or old_data or {}).get("id"))):
        groups.append(own)
    groups.extend(extra_groups)
    if groups:
        send_after_commit(groups, change.as_message())
    return change


def send_after_commit(groups: Iterable[str], message: dict[str, Any]) -> None:
    groups = list(groups)
    transaction.on_commit(lambda: send_now(groups, message), robust=True)


def send_now(groups: Iterable[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - channel layer always configured
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # a publish failure must not undo a committed write
            logger.exception("could not publish to %s", group)


def disconnect_session(token_id: Any) -> None:
    """Close every socket authenticated with this token, once the deletion is committed."""
    send_after_commit([session_group(token_id)], {"type": "session.disconnect"})
