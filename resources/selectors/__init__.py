"""Reads of the resources app, scoped by subject; one module per entity."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models

from firezone.errors import NotFound

M = TypeVar("M", bound=models.Model)


def get_or_not_found(queryset: models.QuerySet[M], obj_or_id: Any) -> M:
    """The row of `queryset` with this id (or the id of this instance); NotFound when missing,
    outside the queryset's scope (e.g. another account) or not a valid id."""
    pk = obj_or_id.pk if isinstance(obj_or_id, models.Model) else obj_or_id
    if pk is None:
        raise NotFound()
    try:
        return queryset.get(pk=pk)
    except (queryset.model.DoesNotExist, ValidationError, ValueError, TypeError):
        raise NotFound() from None
