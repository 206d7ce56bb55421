"""The access explainer (`resources.explain`): reasons, defaults, the gateway part.

The equality of its verdict with create_flow's is the property test
(test_explain_property.py); these pin the texts an admin reads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from accounts.tests.factories import (
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    ProviderFactory,
    everyone_group,
)
from firezone.errors import NotFound
from gateways.hub.model import AccessModel
from resources import conditions as conds
from resources.explain import access_explain, format_time_windows
from resources.models import Policy
from resources.tests._access import region
from resources.tests.factories import (
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    World,
    client_token,
)

pytestmark = pytest.mark.django_db

TUESDAY_EVENING = datetime(2025, 10, 7, 16, 30, tzinfo=UTC)  # 18:30 in Berlin
WEDNESDAY_MORNING = datetime(2025, 10, 8, 8, 0, tzinfo=UTC)  # 10:00 in Berlin
BERLIN_WORKDAYS = [f"{d}/09:00-17:00/Europe/Berlin" for d in "MTWRF"]


def explain(world: World, **kwargs: Any) -> Any:
    kwargs.setdefault("online_gateway_ids", [world.gateway.pk])
    return access_explain(
        account=world.account, actor=world.actor, resource=world.resource, **kwargs
    )


def test_allowed_names_the_policy_the_gateway_and_the_context() -> None:
    world = World()
    token = client_token(world.actor)
    result = explain(world, at=WEDNESDAY_MORNING)
    assert result.allowed and result.authorized and result.reason is None
    assert result.granting_policy is not None
    assert result.granting_policy.policy_id == world.policy.pk
    assert result.granting_policy.membership == "added manually"
    assert result.chosen_gateway_id == world.gateway.pk
    [site] = result.sites
    assert (site.site_id, site.online_gateways, site.compatible_gateways) == (world.site.pk, 1, 1)
    assert site.chosen_gateway_id == world.gateway.pk
    # No condition expires: the session token caps the flow.
    assert result.expires_at == token.expires_at
    assert result.context.client_id == world.client.pk
    assert result.context.remote_ip == "198.51.100.7" and result.context.location == "US"
    assert result.context.version == "1.4.0" and result.context.verified is False


def test_not_a_member_of_any_group_the_policies_name() -> None:
    world = World()
    world.membership.delete()
    result = explain(world)
    assert not result.allowed
    assert result.reason == "not in any group that a policy of this resource names"
    assert [p.member for p in result.policies] == [False]


def test_every_policy_disabled() -> None:
    world = World()
    world.policy.disabled_at = WEDNESDAY_MORNING
    world.policy.save()
    result = explain(world)
    assert result.reason == "every policy of this resource is disabled"
    assert result.policies[0].disabled and not result.policies[0].grants


def test_outside_the_time_window() -> None:
    world = World()
    world.policy.conditions = [
        {
            "property": "current_utc_datetime",
            "operator": "is_in_day_of_week_time_ranges",
            "values": BERLIN_WORKDAYS,
        }
    ]
    world.policy.save()
    result = explain(world, at=TUESDAY_EVENING)
    assert not result.allowed
    assert result.reason == "outside the time window Mon–Fri 09:00–17:00 Europe/Berlin"
    [check] = result.policies[0].conditions
    assert check.evaluated_against == "Tue 18:30 Europe/Berlin" and not check.passed
    inside = explain(world, at=WEDNESDAY_MORNING)
    assert inside.allowed
    # The window's end caps the flow (15:00 UTC = 17:00 Berlin).
    assert inside.expires_at == datetime(2025, 10, 8, 15, 0, tzinfo=UTC)


def test_location_and_overrides() -> None:
    world = World()
    world.policy.conditions = [region("FR", "DE")]
    world.policy.save()
    result = explain(world)
    assert result.reason == "connecting from US, the policy requires one of FR, DE"
    assert result.policies[0].conditions[0].evaluated_against == "US"
    assert explain(world, location="DE").allowed
    assert explain(world, location="DE").context.location == "DE"


def test_remote_ip_provider_and_verified() -> None:
    world = World()
    provider = ProviderFactory(account=world.account, name="Okta", oidc=True)
    other = ProviderFactory(account=world.account, name="Google", oidc=True)
    world.client.identity = IdentityFactory(
        account=world.account, actor=world.actor, provider=other
    )
    world.client.save()
    world.policy.conditions = [
        {"property": "remote_ip", "operator": "is_in_cidr", "values": ["10.0.0.0/8"]},
        {"property": "provider_id", "operator": "is_in", "values": [str(provider.pk)]},
        {"property": "client_verified", "operator": "is", "values": ["true"]},
    ]
    world.policy.save()
    result = explain(world)
    texts = [c.reason for c in result.policies[0].conditions]
    assert texts == [
        "connecting from 198.51.100.7, the policy requires one of 10.0.0.0/8",
        "signed in with Google, the policy requires one of Okta",
        "the client is not verified, the policy requires a verified client",
    ]
    assert result.reason == texts[0]
    assert result.context.provider_id == other.pk and result.context.provider_name == "Google"
    ok = explain(world, remote_ip="10.0.0.7", provider_id=provider.pk, verified=True)
    assert ok.allowed, ok.reason
    assert [c.evaluated_against for c in ok.policies[0].conditions] == [
        "10.0.0.7",
        "Okta",
        "verified",
    ]


def test_no_gateway_online_and_no_site() -> None:
    world = World()
    result = explain(world, online_gateway_ids=[])
    assert result.authorized and not result.allowed
    assert result.reason == f"no gateway of site {world.site.name} online"
    lonely = ResourceFactory(account=world.account)
    PolicyFactory(account=world.account, actor_group=world.group, resource=lonely)
    result = access_explain(
        account=world.account, actor=world.actor, resource=lonely, online_gateway_ids=[]
    )
    assert result.reason == "the resource is not connected to any site"


def test_incompatible_gateway_version() -> None:
    world = World()
    world.gateway.last_seen_version = "1.3.0"
    world.gateway.save()
    result = explain(world)
    assert result.authorized and not result.allowed
    assert result.sites[0].online_gateways == 1 and result.sites[0].compatible_gateways == 0
    assert "compatible with client version 1.4.0" in (result.reason or "")


def test_gateway_choice_is_deterministic() -> None:
    world = World()
    twins = [GatewayFactory(group=world.site, account=world.account) for _ in range(3)]
    online = [world.gateway.pk, *(g.pk for g in twins)]
    chosen = {explain(world, online_gateway_ids=online).chosen_gateway_id for _ in range(5)}
    assert len(chosen) == 1


def test_membership_texts() -> None:
    world = World()
    everyone = everyone_group(world.account)
    MembershipFactory(group=everyone, actor=world.actor, account=world.account)
    PolicyFactory(account=world.account, actor_group=everyone, resource=world.resource)
    provider = ProviderFactory(account=world.account, name="Entra", oidc=True)
    synced = GroupFactory(account=world.account, provider=provider, provider_identifier="g1")
    MembershipFactory(group=synced, actor=world.actor, account=world.account)
    PolicyFactory(account=world.account, actor_group=synced, resource=world.resource)
    result = explain(world)
    assert {p.membership for p in result.policies} == {
        "added manually",
        "Everyone",
        "synced from Entra",
    }


def test_foreign_rows_are_not_found() -> None:
    world, other = World(), World()
    for kwargs in (
        {"actor": other.actor},
        {"resource": other.resource},
        {"client": other.client},
    ):
        args: dict[str, Any] = {
            "account": world.account,
            "actor": world.actor,
            "resource": world.resource,
            **kwargs,
        }
        with pytest.raises(NotFound):
            access_explain(**args)


def test_second_connection_site_counts() -> None:
    world = World()
    site2 = ConnectionFactory(resource=world.resource, account=world.account).gateway_group
    result = explain(world)
    assert {s.site_id for s in result.sites} == {world.site.pk, site2.pk}


def test_format_time_windows() -> None:
    assert format_time_windows(BERLIN_WORKDAYS) == "Mon–Fri 09:00–17:00 Europe/Berlin"
    assert format_time_windows(["S/true/UTC", "U/true/UTC"]) == "Sat–Sun all day UTC"
    assert format_time_windows(["M/9-12,13-17/UTC", "W/9-12/UTC"]) == (
        "Mon 09:00–12:00, 13:00–17:00 UTC; Wed 09:00–12:00 UTC"
    )


@pytest.mark.django_db(transaction=True)  # the hub's load sets its own isolation level
def test_policies_within_one_millisecond_are_tried_in_the_hubs_order() -> None:
    """Two conforming policies inserted within one millisecond: the database loader and the
    hub (millisecond images, then id) pick the same one."""
    world = World()
    second = GroupFactory(account=world.account)
    MembershipFactory(group=second, actor=world.actor, account=world.account)
    other = PolicyFactory(account=world.account, actor_group=second, resource=world.resource)
    low, high = sorted([world.policy, other], key=lambda p: str(p.pk))
    base = datetime(2025, 10, 8, 9, 0, 0, 1000, tzinfo=UTC)
    # The higher id first by microseconds, the same millisecond: the hub tries the lower id.
    Policy.objects.filter(pk=high.pk).update(inserted_at=base)
    Policy.objects.filter(pk=low.pk).update(inserted_at=base.replace(microsecond=1500))
    model = AccessModel.load(world.account.pk)
    ctx = conds.RequestContext(now=WEDNESDAY_MORNING)
    hub = model.authorize(
        world.actor.pk,
        world.resource.pk,
        ctx=ctx,
        token_expires_at=None,
        connectable_ids={str(world.resource.pk)},
    )
    result = explain(world, at=WEDNESDAY_MORNING)
    assert hub.policy_id == low.pk
    assert result.granting_policy is not None and result.granting_policy.policy_id == low.pk


def test_an_expired_session_is_a_denial() -> None:
    world = World()
    token = client_token(world.actor)
    assert token.expires_at is not None
    later = explain(world, at=token.expires_at + timedelta(minutes=1))
    assert later.authorized and not later.allowed
    assert later.reason is not None and later.reason.startswith("the client's session expired")
    assert explain(world, at=token.expires_at - timedelta(minutes=1)).allowed
