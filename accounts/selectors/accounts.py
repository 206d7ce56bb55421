"""Account reads (domain.md §2.1, §3.5 "Accounts"), and the account-scoped row fetch every
accounts service uses."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Account
from accounts.validation import MSG_ID_OR_SLUG, is_uuid, is_valid_id_or_slug
from firezone.errors import NotFound, ValidationFailed

M = TypeVar("M", bound=models.Model)


def in_account(
    source: type[M] | models.QuerySet[M],
    value: Any,
    *,
    account_id: Any,
    for_update: bool = False,
) -> M:
    """The row `value` (an instance or a primary key) of `account_id`, fresh from the database.

    A row of another account is reported exactly like a missing one (NotFound). `for_update`
    locks it, so services decide on current data (last admin, last provider...).
    """
    queryset = source if isinstance(source, models.QuerySet) else source._default_manager.all()
    pk = value.pk if isinstance(value, models.Model) else value
    if for_update:
        queryset = queryset.select_for_update()
    try:
        return queryset.get(pk=pk, account_id=account_id)
    # A malformed id (ValidationError/ValueError) cannot name a row either.
    except (ObjectDoesNotExist, DjangoValidationError, ValueError, TypeError):
        raise NotFound() from None


def account_get(subject: Subject, *, account_id: Any = None) -> Account:
    """The subject's own account (`fetch_account_by_id`); any other id is NotFound."""
    ensure_permissions(subject, P.ACCOUNT_MANAGE_OWN)
    if account_id is not None and str(account_id) != str(subject.account_id):
        raise NotFound()
    return Account.objects.get(pk=subject.account_id)


def account_get_by_id_or_slug(value: str) -> Account:
    """System path (sign-in pages, sockets): a UUID matches `id`, anything else the slug."""
    if not isinstance(value, str) or not is_valid_id_or_slug(value):
        raise ValidationFailed({"id_or_slug": [MSG_ID_OR_SLUG]})
    lookup = {"pk": value} if is_uuid(value) else {"slug": value.lower()}
    account = Account.objects.filter(**lookup).first()
    if account is None:
        raise NotFound()
    return account


def account_get_by_id(account_id: Any) -> Account:
    """System path: an account by id (NotFound for a missing or malformed id)."""
    try:
        return Account.objects.get(pk=account_id)
    except (ObjectDoesNotExist, DjangoValidationError, ValueError, TypeError):
        raise NotFound() from None


def accounts_active() -> models.QuerySet[Account]:
    """System path: accounts that are not disabled, for jobs."""
    return Account.objects.filter(disabled_at__isnull=True).order_by("inserted_at", "id")
