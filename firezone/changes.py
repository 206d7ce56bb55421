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


def row_image(instance: models.Model | None) -> dict[str, Any] | None:
    """A JSON-safe dict of the row's columns (FKs as `<name>_id`), like a WAL row image."""
    if instance is None:
        return None
    data = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


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
