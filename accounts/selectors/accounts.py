"""Account reads (domain.md §2.1, §3.5 "Accounts")."""

from __future__ import annotations

from typing import Any

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Account
from accounts.validation import MSG_ID_OR_SLUG, is_uuid, is_valid_id_or_slug
from firezone.errors import NotFound, ValidationFailed


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
