"""Small custom model fields shared by the domain apps."""

from __future__ import annotations

from typing import Any

from django.db import models


class CITextField(models.CharField):
    """A CharField stored as PostgreSQL `citext`.

    Equality, unique indexes and `IN` lookups ignore case in the database itself, so
    `Account.objects.get(slug="ACME")` finds `acme` and two slugs differing only in case collide.
    `max_length` is only a form/validation limit: citext has no length.
    The first accounts migration creates the `citext` extension.
    """

    description = "Case-insensitive text (PostgreSQL citext)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 255)
        super().__init__(*args, **kwargs)

    def db_type(self, connection: Any) -> str:
        return "citext"

    def cast_db_type(self, connection: Any) -> str:
        return "citext"


class CurrentTransactionId(models.Func):
    """`pg_current_xact_id()` as a bigint (xid8 has no direct cast to bigint)."""

    template = "(pg_current_xact_id()::text::bigint)"
    output_field = models.BigIntegerField()


class TransactionIdField(models.BigIntegerField):
    """A bigint the database fills (`db_default`) and an INSERT returns (`RETURNING`)."""

    db_returning = True
