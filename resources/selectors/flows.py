"""Reads of flows (domain.md §2.14, §3.5 "Flows"): `Flow:manage`, scoped to the account."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet

from accounts.auth import P, Subject, ensure_permissions
from resources.models import Flow

ORDERING = ("-inserted_at", "-id")  # newest first, as the (account, fk, inserted_at DESC) indexes


def _scope(subject: Subject) -> QuerySet[Flow]:
    return Flow.objects.filter(account_id=subject.account_id).select_related(
        "policy", "client", "gateway", "resource"
    )


def _pk(value: Any) -> Any:
    return value.pk if isinstance(value, Model) else value


def flow_list_for(
    subject: Subject,
    *,
    policy: Any = None,
    resource: Any = None,
    client: Any = None,
    actor: Any = None,
    gateway: Any = None,
) -> QuerySet[Flow]:
    """Flows of a policy, resource, client, actor (through its clients) or gateway (instances or
    ids; several filters combine), newest first."""
    ensure_permissions(subject, P.FLOW_MANAGE)
    flows = _scope(subject)
    if policy is not None:
        flows = flows.filter(policy_id=_pk(policy))
    if resource is not None:
        flows = flows.filter(resource_id=_pk(resource))
    if client is not None:
        flows = flows.filter(client_id=_pk(client))
    if actor is not None:
        flows = flows.filter(client__actor_id=_pk(actor))
    if gateway is not None:
        flows = flows.filter(gateway_id=_pk(gateway))
    return flows.order_by(*ORDERING)
