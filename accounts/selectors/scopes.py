"""Row scopes shared by selectors of several apps."""

from __future__ import annotations

from typing import TypeVar

from django.db import models

from accounts.auth import P, Subject, ensure_permissions

M = TypeVar("M", bound=models.Model)


def account_or_own(
    subject: Subject, queryset: models.QuerySet[M], *, manage: P, manage_own: P
) -> models.QuerySet[M]:
    """`manage` sees the rows of the subject's account, `manage_own` only its actor's own
    (rows with an `actor_id`); Unauthorized with neither."""
    ensure_permissions(subject, one_of=(manage, manage_own))
    queryset = queryset.filter(account_id=subject.account_id)
    if not subject.has(manage):
        queryset = queryset.filter(actor_id=subject.actor_id)
    return queryset
