"""Shared helpers of the access tests (test_access_*.py): request contexts, conditions (a region,
a time window), grants and connected sites, and the connectable resource ids of a world.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from accounts.tests.factories import GroupFactory, MembershipFactory
from resources import access, time_windows
from resources import conditions as conds
from resources.models import Policy, Resource
from resources.services import flows as flow_svc
from resources.tests.factories import (
    ConnectionFactory,
    PolicyFactory,
    ResourceFactory,
    World,
)

NOON = datetime(2025, 10, 8, 12, 0, tzinfo=UTC)  # a Wednesday


def ctx_for(client: Any, now: datetime = NOON, **overrides: Any) -> conds.RequestContext:
    base = flow_svc.client_request_context(client, now=now)
    fields: dict[str, Any] = {
        "now": base.now,
        "remote_ip": base.remote_ip,
        "remote_ip_location_region": base.remote_ip_location_region,
        "provider_id": base.provider_id,
        "client_verified": base.client_verified,
    }
    fields.update(overrides)
    return conds.RequestContext(**fields)


def region(*codes: str, operator: str = "is_in") -> dict[str, Any]:
    return {"property": "remote_ip_location_region", "operator": operator, "values": list(codes)}


def window(ranges: str, day: str = "W") -> dict[str, Any]:
    return {
        "property": "current_utc_datetime",
        "operator": "is_in_day_of_week_time_ranges",
        "values": [f"{day}/{ranges}/UTC"],
    }


def today() -> str:
    return time_windows.DAYS_OF_WEEK[timezone.now().astimezone(UTC).weekday()]


def grant(world: World, resource: Resource, **kwargs: Any) -> Policy:
    """Another group of the world's actor, granting `resource`."""
    group = GroupFactory(account=world.account)
    MembershipFactory(group=group, actor=world.actor, account=world.account)
    return PolicyFactory(account=world.account, actor_group=group, resource=resource, **kwargs)


def connected(world: World, **kwargs: Any) -> Resource:
    resource = ResourceFactory(account=world.account, **kwargs)
    ConnectionFactory(resource=resource, gateway_group=world.site, account=world.account)
    return resource


def connectable_ids(world: World, version: str | None = None, **ctx: Any) -> set[Any]:
    return {
        r.id
        for r in access.connectable_resources(
            world.client, version=version, request_context=ctx_for(world.client, **ctx)
        )
    }
