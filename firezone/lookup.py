"""The one "fetch a row in scope or NotFound" helper used by every service and selector.

A row outside the caller's scope (another account, another actor's device...) is reported exactly
like a missing one, and so is an id that cannot name a row at all (malformed UUID, wrong type), so
callers never leak which ids exist.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models

from firezone.errors import NotFound

M = TypeVar("M", bound=models.Model)


def get_or_not_found(
    source: type[M] | models.QuerySet[M],
    value: Any,
    *,
    for_update: bool = False,
    **scope: Any,
) -> M:
    """The row of `source` (a model or a scoped queryset) whose pk is `value` (an instance or a
    primary key), further filtered by `scope` (e.g. `account_id=...`), fresh from the database.

    `for_update` locks the row, so services decide on current data (last admin, last provider...).
    Missing rows, rows outside the scope and malformed ids all raise NotFound.
    """
    queryset = source if isinstance(source, models.QuerySet) else source._default_manager.all()
    pk = value.pk if isinstance(value, models.Model) else value
    if pk is None:
        raise NotFound()
    if for_update:
        queryset = queryset.select_for_update()
    try:
        return queryset.get(pk=pk, **scope)
    # A malformed id (ValidationError/ValueError/TypeError) cannot name a row either.
    except (ObjectDoesNotExist, DjangoValidationError, ValueError, TypeError):
        raise NotFound() from None
