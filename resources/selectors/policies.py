"""Reads of policies (domain.md §2.13, §3.3 "Policies", §3.5).

Scope: `Policy:manage` sees every policy of the account; `view_available_policies` only policies
whose group the subject's actor is a member of.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject, ensure_permissions
from firezone.lookup import get_or_not_found
from resources.models import Policy
from resources.selectors import get_by_id_or_persistent_id

ORDERING = ("inserted_at", "id")  # domain.md §0.7


def _scope(subject: Subject) -> QuerySet[Policy]:
    policies = Policy.objects.filter(account_id=subject.account_id)
    if subject.has(P.POLICY_MANAGE):
        return policies
    if subject.has(P.POLICY_VIEW_AVAILABLE):
        return policies.filter(actor_group__memberships__actor_id=subject.actor_id)
    return policies.none()


def _ensure_view(subject: Subject) -> None:
    ensure_permissions(subject, one_of=(P.POLICY_MANAGE, P.POLICY_VIEW_AVAILABLE))


def policy_get(subject: Subject, policy_id: Any) -> Policy:
    _ensure_view(subject)
    return get_or_not_found(_scope(subject).select_related("actor_group", "resource"), policy_id)


def policy_get_by_id_or_persistent_id(subject: Subject, id_: Any) -> Policy:
    _ensure_view(subject)
    return get_by_id_or_persistent_id(
        _scope(subject).select_related("actor_group", "resource"), id_
    )


def policy_list(
    subject: Subject,
    *,
    resource_id: Any = None,
    actor_group_id: Any = None,
    disabled: bool | None = None,
) -> QuerySet[Policy]:
    """Policies the subject may see, oldest first; optionally of one resource / group, and only
    enabled (`disabled=False`) or only disabled (`disabled=True`) ones."""
    _ensure_view(subject)
    policies = _scope(subject).select_related("actor_group", "resource")
    if resource_id is not None:
        policies = policies.filter(resource_id=resource_id)
    if actor_group_id is not None:
        policies = policies.filter(actor_group_id=actor_group_id)
    if disabled is not None:
        policies = policies.filter(disabled_at__isnull=not disabled)
    return policies.order_by(*ORDERING)


def policies_for_client_resource(
    *, account_id: Any, actor_id: Any, resource_id: Any, site_id: Any = None
) -> QuerySet[Policy]:
    """System path (flow authorisation, client sockets): the non-disabled policies that grant
    `resource_id` to one of the actor's groups; with `site_id`, only if the resource is connected
    to that site."""
    policies = Policy.objects.filter(
        account_id=account_id,
        resource_id=resource_id,
        disabled_at__isnull=True,
        actor_group__memberships__actor_id=actor_id,
    )
    if site_id is not None:
        policies = policies.filter(resource__connections__gateway_group_id=site_id)
    return policies.order_by(*ORDERING)
