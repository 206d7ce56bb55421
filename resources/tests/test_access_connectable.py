"""Connectable resources (protocol.md §5.2): grants, conditions, sites, version adaptation, the
Internet resource, rendering and query counts.

Shared helpers: resources/tests/_access.py.
"""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from accounts.tests.factories import GroupFactory, MembershipFactory
from gateways import wire
from resources import access
from resources.models import Policy, Resource, ResourceConnection
from resources.tests._access import NOON, connectable_ids, connected, ctx_for, grant, region, window
from resources.tests.factories import (
    ConnectionFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
    World,
)

pytestmark = pytest.mark.django_db

# --- §5.2 connectable resources -------------------------------------------------------------------


def test_granted_connected_resource_is_connectable_with_its_site() -> None:
    world = World()
    [found] = access.connectable_resources(world.client, request_context=ctx_for(world.client))
    assert found.id == world.resource.pk
    assert (found.type, found.address, found.name) == (
        "dns",
        world.resource.address,
        world.resource.name,
    )
    assert found.sites == (access.SiteRef(id=world.site.pk, name=world.site.name),)
    view = wire.client_resource_view(found)
    assert view["gateway_groups"] == [{"id": str(world.site.pk), "name": world.site.name}]


def test_policies_are_ored_and_conditions_anded() -> None:
    world = World()
    world.policy.conditions = [region("US"), region("FR")]  # AND: fails for a US client
    world.policy.save()
    assert connectable_ids(world) == set()
    grant(world, world.resource, conditions=[region("DE", "US")])  # OR: this one holds
    assert connectable_ids(world) == {world.resource.pk}
    assert connectable_ids(world, remote_ip_location_region="CN") == set()


def test_time_window_condition_follows_the_clock() -> None:
    world = World()
    world.policy.conditions = [window("09:00-13:00")]
    world.policy.save()
    assert connectable_ids(world, now=NOON) == {world.resource.pk}
    assert connectable_ids(world, now=NOON.replace(hour=14)) == set()


def test_disabled_policy_or_other_actors_grant_nothing() -> None:
    world = World()
    world.policy.disabled_at = timezone.now()
    world.policy.save()
    other_actor_group = GroupFactory(account=world.account)
    MembershipFactory(group=other_actor_group, account=world.account)  # someone else
    PolicyFactory(account=world.account, actor_group=other_actor_group, resource=world.resource)
    World()  # another account's grants (same shapes) are invisible
    assert connectable_ids(world) == set()


def test_resource_without_site_is_not_connectable() -> None:
    world = World()
    lonely = ResourceFactory(account=world.account)
    grant(world, lonely)
    assert connectable_ids(world) == {world.resource.pk}
    ResourceConnection.objects.filter(resource=world.resource).delete()
    assert connectable_ids(world) == set()


def test_no_duplicates_and_every_site_listed_once() -> None:
    world = World()
    grant(world, world.resource)
    grant(world, world.resource, conditions=[region("US")])
    second_site = SiteFactory(account=world.account, name="aaa-first-by-name")
    ConnectionFactory(resource=world.resource, gateway_group=second_site, account=world.account)
    [found] = access.connectable_resources(world.client, request_context=ctx_for(world.client))
    assert [s.id for s in found.sites] == [second_site.pk, world.site.pk]


@pytest.mark.parametrize(
    ("address", "version", "expected"),
    [
        ("*.corp.example", "1.4.0", "*.corp.example"),
        ("*.corp.example", "1.1.0", "?.corp.example"),
        ("**.corp.example", "1.1.0", "*.corp.example"),
        ("a.*.corp.example", "1.1.0", None),
        ("*.corp.example", "garbage", None),
    ],
)
def test_version_adaptation(address: str, version: str, expected: str | None) -> None:
    world = World()
    Resource.objects.filter(pk=world.resource.pk).update(address=address)
    found = access.connectable_resources(
        world.client, version=version, request_context=ctx_for(world.client)
    )
    assert [r.address for r in found] == ([expected] if expected else [])


def test_version_defaults_to_the_clients_last_seen_version() -> None:
    world = World()
    Resource.objects.filter(pk=world.resource.pk).update(address="a.*.corp.example")
    assert connectable_ids(world) == {world.resource.pk}  # client 1.4.0
    world.client.last_seen_version = "1.1.0"
    assert connectable_ids(world) == set()


@pytest.mark.parametrize(("version", "shown"), [("1.2.9", False), ("1.3.0", True)])
def test_internet_resource(version: str, shown: bool) -> None:
    world = World()
    internet_site = SiteFactory(account=world.account, internet=True)
    internet = ResourceFactory(account=world.account, internet=True)
    ConnectionFactory(resource=internet, gateway_group=internet_site, account=world.account)
    grant(world, internet)
    found = {
        r.id: r
        for r in access.connectable_resources(
            world.client, version=version, request_context=ctx_for(world.client)
        )
    }
    assert (internet.pk in found) is shown
    if shown:
        assert wire.client_resource_view(found[internet.pk]) == {
            "id": str(internet.pk),
            "type": "internet",
            "gateway_groups": [{"id": str(internet_site.pk), "name": "Internet"}],
            "can_be_disabled": True,
        }


def test_rendered_resources_keep_stored_fields() -> None:
    world = World()
    Resource.objects.filter(pk=world.resource.pk).update(
        address_description="desc",
        ip_stack="ipv4_only",
        filters=[{"protocol": "tcp", "ports": ["443"]}],
    )
    ip = connected(world, type="ip", address="10.0.0.7", ip_stack=None, name="host")
    grant(world, ip)
    views = {
        v["id"]: v
        for v in (
            wire.client_resource_view(r)
            for r in access.connectable_resources(
                world.client, request_context=ctx_for(world.client)
            )
        )
    }
    dns = views[str(world.resource.pk)]
    assert dns["ip_stack"] == "ipv4_only" and dns["address_description"] == "desc"
    assert dns["filters"] == [{"protocol": "tcp", "port_range_start": 443, "port_range_end": 443}]
    assert views[str(ip.pk)]["type"] == "cidr" and views[str(ip.pk)]["address"] == "10.0.0.7/32"


def test_load_is_two_queries_whatever_the_size(django_assert_num_queries) -> None:
    world = World()
    for _ in range(3):
        grant(world, connected(world), conditions=[region("US")])
    small_ctx = ctx_for(world.client)
    with django_assert_num_queries(2):
        small = access.client_access_load(world.client).connectable(small_ctx, "1.4.0")
    for _ in range(40):
        resource = connected(world)
        grant(world, resource)
        PolicyFactory(account=world.account, actor_group=world.group, resource=resource)
    with django_assert_num_queries(2):
        large = access.client_access_load(world.client).connectable(small_ctx, "1.4.0")
    assert len(small) == 4 and len(large) == 44
    assert len({r.id for r in large}) == 44


def test_no_grants_is_one_query(django_assert_num_queries) -> None:
    world = World()
    world.policy.delete()
    with django_assert_num_queries(1):
        assert (
            access.client_access_load(world.client).connectable(ctx_for(world.client), None) == []
        )


def test_thousand_resources_and_policies() -> None:
    """The target size (§ brief): 1,000 resources with 1,000 policies, loaded in two queries and
    evaluated in memory well under a second (generous bound for shared CI machines)."""
    world = World()
    resources = Resource.objects.bulk_create(
        ResourceFactory.build(account=world.account, created_by="system") for _ in range(1000)
    )
    ResourceConnection.objects.bulk_create(
        ResourceConnection(
            resource=r, gateway_group=world.site, account=world.account, created_by="system"
        )
        for r in resources
    )
    Policy.objects.bulk_create(
        Policy(
            account=world.account,
            actor_group=world.group,
            resource=r,
            conditions=[region("US", "DE"), window("true")] if i % 2 else [],
            created_by="system",
        )
        for i, r in enumerate(resources)
    )
    ctx = ctx_for(world.client)
    started = time.perf_counter()
    found = access.client_access_load(world.client).connectable(ctx, "1.4.0")
    elapsed = time.perf_counter() - started
    assert len(found) == 1001
    assert elapsed < 3.0, f"connectable resources took {elapsed:.2f}s"
