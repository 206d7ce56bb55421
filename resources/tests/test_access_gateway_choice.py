"""Gateway choice (protocol.md §5.4 steps 2-3): online gateways of the resource's sites, the
version compatibility window, what a gateway can serve, and the preference order.

Shared helpers: resources/tests/_access.py.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gateways.models import Site
from resources import access
from resources.models import Flow, Resource
from resources.tests._access import grant
from resources.tests.factories import (
    ConnectionFactory,
    GatewayFactory,
    ResourceFactory,
    SiteFactory,
    World,
    make_flow,
)

pytestmark = pytest.mark.django_db

# --- §5.4 steps 2-3: gateway choice ---------------------------------------------------------------


def stored(world: World, resource: Resource | None = None) -> access.AccessResource:
    loaded = access.client_access_load(world.client)
    return loaded.resources[(resource or world.resource).pk]


def gw(world: World, version: str = "1.4.0", site: Site | None = None, **kwargs: Any) -> Any:
    return GatewayFactory(
        group=site or world.site, account=world.account, last_seen_version=version, **kwargs
    )


def choose(world: World, online: list[Any], **kwargs: Any) -> Any:
    kwargs.setdefault("client_version", world.client.last_seen_version)
    if "resource" not in kwargs:
        kwargs["resource"] = stored(world)
    return access.gateway_choose(
        account_id=world.account.pk,
        client_id=world.client.pk,
        online_gateway_ids=[g.pk for g in online],
        **kwargs,
    )


def test_only_online_gateways_of_the_resources_sites() -> None:
    world = World()
    elsewhere = gw(world, site=SiteFactory(account=world.account))
    assert choose(world, []) is None
    assert choose(world, [elsewhere]) is None
    assert choose(world, [world.gateway, elsewhere]) == world.gateway
    assert access.gateway_candidates(
        account_id=world.account.pk,
        resource=stored(world),
        client_version="1.4.0",
        online_gateway_ids=["junk", str(world.gateway.pk)],
    ) == [world.gateway]


@pytest.mark.parametrize(
    ("client_version", "gateway_version", "flow_protocol", "eligible"),
    [
        ("1.4.0", "1.4.17", True, True),
        ("1.4.0", "1.5.9", True, True),
        ("1.4.0", "1.6.0", True, False),
        ("1.4.0", "1.3.9", True, False),  # in the plain window, but cannot authorize_flow
        ("1.4.0", "1.3.9", False, True),  # legacy paths keep the plain window
        ("1.4.0", "1.2.9", False, False),
        ("1.5.4", "1.4.0", True, True),
        ("1.0.3", "1.0.0", False, True),  # lower bound max(0, minor-1): no crash on minor 0
        ("1.0.3", "1.2.0", False, False),
        ("1.4.0", "garbage", False, False),
        ("garbage", "1.4.0", False, False),
    ],
)
def test_compatibility_window(
    client_version: str, gateway_version: str, flow_protocol: bool, eligible: bool
) -> None:
    world = World()
    Resource.objects.filter(pk=world.resource.pk).update(address="plain.example.com")
    gateway = gw(world, gateway_version)
    chosen = choose(world, [gateway], client_version=client_version, flow_protocol=flow_protocol)
    assert (chosen == gateway) is eligible


def test_gateway_must_be_able_to_serve_the_resource() -> None:
    world = World()
    internet_site = SiteFactory(account=world.account, internet=True)
    internet = ResourceFactory(account=world.account, internet=True)
    ConnectionFactory(resource=internet, gateway_group=internet_site, account=world.account)
    grant(world, internet)
    old = gw(world, "1.2.5", site=internet_site)
    assert (
        choose(
            world,
            [old],
            resource=stored(world, internet),
            client_version="1.3.0",
            flow_protocol=False,
        )
        is None
    )
    new = gw(world, "1.3.1", site=internet_site)
    assert (
        choose(
            world,
            [old, new],
            resource=stored(world, internet),
            client_version="1.3.0",
            flow_protocol=False,
        )
        == new
    )
    Resource.objects.filter(pk=world.resource.pk).update(address="a.*.example.com")
    legacy = gw(world, "1.1.5")
    assert choose(world, [legacy], client_version="1.2.0", flow_protocol=False) is None


def test_prefers_connected_gateways() -> None:
    world = World()
    other = gw(world)
    for seed in range(10):
        assert (
            choose(
                world,
                [world.gateway, other],
                connected_gateway_ids=[str(other.pk), "junk"],
                rng=random.Random(seed),
            )
            == other
        )


def test_prefers_the_gateway_of_the_latest_unexpired_flow(django_assert_max_num_queries) -> None:
    world = World()
    other = gw(world)
    third = gw(world)
    make_flow(world, gateway=other)
    latest = make_flow(world, gateway=world.gateway)
    Flow.objects.filter(pk=latest.pk).update(inserted_at=timezone.now() + timedelta(seconds=5))
    online = [world.gateway, other, third]
    connected_ids = [world.gateway.pk, other.pk]
    for seed in range(10):
        assert (
            choose(world, online, connected_gateway_ids=connected_ids, rng=random.Random(seed))
            == world.gateway
        )
    # Expired: the older, still valid flow decides.
    Flow.objects.filter(pk=latest.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for seed in range(10):
        assert (
            choose(world, online, connected_gateway_ids=connected_ids, rng=random.Random(seed))
            == other
        )
    # A flow through a gateway the client is not connected to does not count.
    candidates = access.gateway_candidates(
        account_id=world.account.pk,
        resource=stored(world),
        client_version="1.4.0",
        online_gateway_ids=[g.pk for g in online],
    )
    with django_assert_max_num_queries(1):
        picked = access.gateway_pick(
            candidates,
            client_id=world.client.pk,
            resource_id=world.resource.pk,
            connected_gateway_ids=[third.pk, world.gateway.pk],
            rng=random.Random(1),
        )
    assert picked in (third, world.gateway)


def test_gateway_choice_is_one_query_plus_one_for_a_flow_tie_break(
    django_assert_num_queries,
) -> None:
    world = World()
    other = gw(world)
    resource = stored(world)
    online = [world.gateway, other]
    with django_assert_num_queries(1):
        choose(world, online, resource=resource)
    with django_assert_num_queries(1):
        choose(world, online, resource=resource, connected_gateway_ids=[other.pk])
    with django_assert_num_queries(2):
        choose(world, online, resource=resource, connected_gateway_ids=[g.pk for g in online])


def test_nearest_location_then_newest_semver() -> None:
    world = World()
    berlin: dict[str, Any] = {
        "last_seen_remote_ip_location_lat": 52.52,
        "last_seen_remote_ip_location_lon": 13.40,
    }
    sydney: dict[str, Any] = {
        "last_seen_remote_ip_location_lat": -33.87,
        "last_seen_remote_ip_location_lon": 151.2,
    }
    # The world's own gateway has no location: it comes last.
    far = gw(world, "1.5.0", **sydney)
    near_old = gw(world, "1.4.9", **berlin)
    near_new = gw(world, "1.4.10", **berlin)  # a string compare would prefer 1.4.9
    online = [world.gateway, far, near_old, near_new]
    for seed in range(10):
        assert choose(world, online, lat=48.85, lon=2.35, rng=random.Random(seed)) == near_new
    assert choose(world, online, lat=-37.8, lon=144.9) == far
    seen = {choose(world, online, rng=random.Random(seed)) for seed in range(40)}
    assert len(seen) > 1  # unknown client location: random among all candidates


def test_legacy_named_gateway_checks() -> None:
    world = World()
    resource = stored(world)
    elsewhere = gw(world, site=SiteFactory(account=world.account))
    foreign = GatewayFactory()

    def check(gateway_id: Any, online: list[Any]) -> tuple[Any, Any]:
        return access.legacy_gateway_check(
            account_id=world.account.pk,
            gateway_id=gateway_id,
            resource=resource,
            online_gateway_ids=[g.pk for g in online],
        )

    assert check("junk", []) == (None, "not_found")
    assert check(foreign.pk, [foreign]) == (None, "not_found")
    assert check(elsewhere.pk, [elsewhere]) == (None, "not_found")
    assert check(world.gateway.pk, []) == (None, "offline")
    assert check(str(world.gateway.pk), [world.gateway]) == (world.gateway, None)
