"""Reads of the resources app, scoped by subject; one module per entity."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.db import models
from django.db.models import Q

from firezone.errors import NotFound

M = TypeVar("M", bound=models.Model)


def get_by_id_or_persistent_id(queryset: models.QuerySet[M], value: Any) -> M:
    """The row of `queryset` whose `id` or stable `persistent_id` (old links) is `value` (the
    lowest id if both match different rows); NotFound when none does or `value` is no UUID."""
    try:
        pk = uuid.UUID(str(value))
    except ValueError:
        raise NotFound() from None
    found = queryset.filter(Q(id=pk) | Q(persistent_id=pk)).order_by("id").first()
    if found is None:
        raise NotFound()
    return found
