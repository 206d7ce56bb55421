"""Relay queries (domain.md §2.11, §3.3): `relay:manage`; global groups and relays included."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Q, QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.validation import is_uuid
from firezone.lookup import get_or_not_found
from gateways.models import Relay, RelayGroup

# Global (account NULL) rows first, then by age.
_GLOBAL_FIRST = (F("account_id").asc(nulls_first=True), "inserted_at", "id")


def _visible(subject: Subject) -> Q:
    ensure_permissions(subject, P.RELAY_MANAGE)
    return Q(account_id=subject.account_id) | Q(account_id__isnull=True)


def relay_group_list(subject: Subject) -> QuerySet[RelayGroup]:
    """Global groups first, then the account's, each oldest first."""
    return RelayGroup.objects.filter(_visible(subject)).order_by(*_GLOBAL_FIRST)


def relay_group_get(subject: Subject, *, group_id: Any) -> RelayGroup:
    return get_or_not_found(RelayGroup.objects.filter(_visible(subject)), group_id)


def relay_list(subject: Subject, *, group: RelayGroup | Any = None) -> QuerySet[Relay]:
    queryset = Relay.objects.filter(_visible(subject)).select_related("group")
    if group is not None:
        group_id = group.pk if isinstance(group, RelayGroup) else group
        if not is_uuid(str(group_id)):
            return Relay.objects.none()
        queryset = queryset.filter(group_id=group_id)
    return queryset.order_by(*_GLOBAL_FIRST)


def relay_get(subject: Subject, *, relay_id: Any) -> Relay:
    return get_or_not_found(Relay.objects.filter(_visible(subject)), relay_id)
