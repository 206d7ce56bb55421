"""Reads of policies (domain.md §2.13, §3.3 "Policies", §3.5).

Scope: `Policy:manage` sees every policy of the account; `view_available_policies` only policies
whose group the subject's actor is a member of.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import ActorGroup
from firezone.lookup import get_or_not_found
from gateways.models import Site
from resources.models import Flow, Policy, Resource
from resources.selectors import get_by_id_or_persistent_id
from resources.selectors.flows import flow_list_for
from resources.selectors.resources import with_sites

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


def policy_get_by_id_or_persistent_id(subject: Subject, id_: Any) -> Policy:
    _ensure_view(subject)
    return get_by_id_or_persistent_id(
        _scope(subject).select_related("actor_group__provider", "resource"), id_
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
    policies = _scope(subject).select_related("actor_group__provider", "resource")
    if resource_id is not None:
        policies = policies.filter(resource_id=resource_id)
    if actor_group_id is not None:
        policies = policies.filter(actor_group_id=actor_group_id)
    if disabled is not None:
        policies = policies.filter(disabled_at__isnull=not disabled)
    return policies.order_by(*ORDERING)


def policy_order(inserted_at: datetime | None, policy_id: Any) -> tuple[datetime, str]:
    """The order in which a resource's policies are tried (the first of equally long conforming
    ones wins): insertion time at the change images' millisecond precision, then id — the
    access hub's order (`gateways.hub.model.PolicyRow.order`), so every loader picks the same."""
    if inserted_at is None:
        return (datetime.min, str(policy_id))
    return (inserted_at.replace(microsecond=inserted_at.microsecond // 1000 * 1000), str(policy_id))


def policies_in_trial_order(policies: Iterable[Policy]) -> list[Policy]:
    """`policies` sorted by `policy_order` (for `conditions.evaluate_policies`)."""
    return sorted(policies, key=lambda p: policy_order(p.inserted_at, p.pk))


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


# --- the policy form's pickers and the detail page (portal.md §4.4) ---------------------------

OPTIONS_LIMIT = 25  # the pickers show this many options; the search narrows the rest


@dataclass(frozen=True)
class Options:
    """One page of picker options and how many matched in all."""

    total: int
    items: list[Any] = field(default_factory=list)

    @property
    def more(self) -> int:
        return max(0, self.total - len(self.items))


def policy_group_options(
    subject: Subject, *, search: str = "", limit: int = OPTIONS_LIMIT
) -> Options:
    """Groups a policy can be granted to: "Everyone" first, then manual groups, then synced
    groups by provider name; each by name. `search` matches the name (case-insensitive)."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    groups = ActorGroup.objects.filter(account_id=subject.account_id).select_related("provider")
    if search.strip():
        groups = groups.filter(name__icontains=search.strip())
    kind = Case(
        When(type=ActorGroup.Type.MANAGED, then=Value(0)),
        When(provider__isnull=True, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    ordered = groups.order_by(kind, "provider__name", "provider_id", "name", "id")
    return Options(total=groups.count(), items=list(ordered[:limit]))


RESOURCE_TYPE_ORDER = ("internet", "dns", "ip", "cidr")


def policy_resource_options(
    subject: Subject, *, search: str = "", limit: int = OPTIONS_LIMIT
) -> Options:
    """Resources a policy can grant: the Internet resource first, then DNS, IP and CIDR ones,
    each by name, with their connected sites. `search` matches the name or the address."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    resources = Resource.objects.filter(account_id=subject.account_id)
    if search.strip():
        term = search.strip()
        resources = resources.filter(Q(name__icontains=term) | Q(address__icontains=term))
    kind = Case(
        *(When(type=t, then=Value(i)) for i, t in enumerate(RESOURCE_TYPE_ORDER)),
        default=Value(len(RESOURCE_TYPE_ORDER)),
        output_field=IntegerField(),
    )
    ordered = with_sites(resources).order_by(kind, "name", "id")
    return Options(total=resources.count(), items=list(ordered[:limit]))


def policy_resource_option(subject: Subject, resource_id: Any) -> Resource:
    """One resource of the account with its connected sites (the locked or chosen option)."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    return get_or_not_found(
        with_sites(Resource.objects.filter(account_id=subject.account_id)), resource_id
    )


def policy_group_option(subject: Subject, group_id: Any) -> ActorGroup:
    """One group of the account with its provider (the locked or chosen option)."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    return get_or_not_found(
        ActorGroup.objects.filter(account_id=subject.account_id).select_related("provider"),
        group_id,
    )


def policy_site_get(subject: Subject, site_id: Any) -> Site:
    """The site a policy form came from (`?site_id=`), only to redirect back to it."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    return get_or_not_found(Site.objects.filter(account_id=subject.account_id), site_id)


def policy_flows(subject: Subject, policy: Policy | Any) -> QuerySet[Flow]:
    """The policy's "Recent Connections", newest first, with what the table shows."""
    return flow_list_for(subject, policy=policy).select_related("client__actor", "gateway__group")
