"""Connectable resources, authorisation, gateway choice and re-authorisation (protocol.md §5)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.tests.factories import GroupFactory, MembershipFactory
from firezone import changes
from firezone.errors import NotFound
from firezone.models import ChangeLog
from gateways import wire
from gateways.models import Site
from resources import access
from resources import conditions as conds
from resources.models import Flow, Policy, Resource, ResourceConnection
from resources.services import flows as flow_svc
from resources.tests.factories import (
    ClientFactory,
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
    World,
    client_subject,
    client_token,
    make_flow,
)

pytestmark = pytest.mark.django_db

NOON = datetime(2025, 10, 8, 12, 0, tzinfo=UTC)  # a Wednesday


def ctx_for(client: Any, now: datetime = NOON, **overrides: Any) -> conds.RequestContext:
    base = flow_svc.client_request_context(client, now=now)
    fields = {
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
    return conds.DAYS_OF_WEEK[timezone.now().astimezone(UTC).weekday()]


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


# --- §5.4 step 1: authorisation -------------------------------------------------------------------


def authorize(
    world: World, resource_id: Any, token_expires_at: Any, **ctx: Any
) -> access.Authorization:
    loaded = access.client_access_load(world.client)
    context = ctx_for(world.client, **ctx)
    ids = [r.id for r in loaded.connectable(ctx_for(world.client), "1.4.0")]
    return loaded.authorize(
        resource_id, ctx=context, token_expires_at=token_expires_at, connectable_ids=ids
    )


def test_authorize_not_found_for_unknown_or_unconnectable() -> None:
    world = World()
    lonely = ResourceFactory(account=world.account)
    grant(world, lonely)  # granted but without a site
    for resource_id in (lonely.pk, ResourceFactory().pk, "not-a-uuid", None):
        result = authorize(world, resource_id, NOON + timedelta(days=1))
        assert result.status == "not_found" and not result.ok


def test_authorize_not_found_when_the_grant_vanished_since_the_list_was_sent() -> None:
    world = World()
    stale_ids = connectable_ids(world)
    world.membership.delete()
    loaded = access.client_access_load(world.client)
    result = loaded.authorize(
        world.resource.pk,
        ctx=ctx_for(world.client),
        token_expires_at=None,
        connectable_ids=stale_ids,
    )
    assert result.status == "not_found"


def test_authorize_forbidden_carries_the_union_of_violated_properties() -> None:
    world = World()
    world.policy.conditions = [window("09:00-13:00"), region("US")]
    world.policy.save()
    grant(
        world,
        world.resource,
        conditions=[
            region("US"),
            {"property": "client_verified", "operator": "is", "values": ["true"]},
        ],
    )
    # Connectable at noon; at 14:00 neither policy holds (the time window closed).
    result = authorize(
        world, world.resource.pk, None, now=NOON.replace(hour=14), remote_ip_location_region="FR"
    )
    assert result.status == "forbidden"
    assert result.violated_properties == (
        "current_utc_datetime",
        "remote_ip_location_region",
        "client_verified",
    )


def test_authorize_ok_takes_the_latest_policy_and_caps_by_the_token() -> None:
    world = World()
    world.policy.conditions = [window("09:00-13:00")]
    world.policy.save()
    longer = grant(world, world.resource, conditions=[window("10:00-18:00")])
    result = authorize(world, world.resource.pk, NOON + timedelta(days=1))
    assert result.ok and result.policy_id == longer.pk
    assert result.membership_id is not None and result.actor_group_id == longer.actor_group_id
    assert result.condition_expires_at == result.expires_at == NOON.replace(hour=18)
    capped = authorize(world, str(world.resource.pk), NOON + timedelta(hours=1))
    assert capped.expires_at == NOON + timedelta(hours=1)
    assert capped.condition_expires_at == NOON.replace(hour=18)


def test_authorize_without_token_expiry_does_not_crash() -> None:
    world = World()
    result = authorize(world, world.resource.pk, None)
    assert result.ok and result.condition_expires_at is None
    assert result.expires_at == NOON + flow_svc.MAX_FLOW_LIFETIME
    world.policy.conditions = [window("true")]
    world.policy.save()
    assert authorize(world, world.resource.pk, None).expires_at == datetime(
        2025, 10, 8, 23, 59, 59, tzinfo=UTC
    )


def test_decision_inserts_the_flow_without_reevaluating(django_capture_on_commit_callbacks) -> None:
    world = World()
    world.policy.conditions = [window("true", day=today())]
    world.policy.save()
    token = client_token(world.actor, expires_in=timedelta(days=30))
    subject = client_subject(world.actor, token)
    loaded = access.client_access_load(world.client)
    now_ctx = ctx_for(world.client, now=timezone.now())
    result = loaded.authorize(
        world.resource.pk,
        ctx=now_ctx,
        token_expires_at=subject.expires_at,
        connectable_ids=[r.id for r in loaded.connectable(now_ctx, "1.4.0")],
    )
    # The client moved since: a fresh evaluation would not matter, the decision is kept.
    world.client.last_seen_remote_ip_location_region = "CN"
    world.client.save()
    flow = flow_svc.flow_authorize(
        subject=subject,
        client=world.client,
        resource=world.resource,
        gateway=world.gateway,
        decision=result.decision,
    )
    assert flow.policy_id == world.policy.pk
    assert flow.actor_group_membership_id == result.membership_id
    assert flow.expires_at == result.expires_at
    assert flow.token_id == token.pk


def test_stale_decision_is_not_found() -> None:
    world = World()
    result = authorize(world, world.resource.pk, None)
    world.policy.disabled_at = timezone.now()
    world.policy.save()
    with pytest.raises(NotFound):
        flow_svc.flow_authorize(
            subject=client_subject(world.actor),
            client=world.client,
            resource=world.resource,
            gateway=world.gateway,
            decision=result.decision,
        )
    assert not Flow.objects.exists()


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
    berlin = {"last_seen_remote_ip_location_lat": 52.52, "last_seen_remote_ip_location_lon": 13.40}
    sydney = {"last_seen_remote_ip_location_lat": -33.87, "last_seen_remote_ip_location_lon": 151.2}
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


# --- §5.5 re-authorisation ----------------------------------------------------------------------


def deleted_image(flow: Flow) -> dict[str, Any]:
    [change] = changes.delete(flow)
    assert change.old is not None
    return change.old


def test_reauthorize_under_another_policy_keeps_the_shorter_expiry() -> None:
    world = World()
    token = client_token(world.actor, expires_in=timedelta(days=2))
    old = make_flow(world, token=token, expires_at=timezone.now() + timedelta(hours=3))
    backup = grant(world, world.resource, conditions=[window("true", day=today())])
    image = deleted_image(old)
    world.policy.delete()
    ChangeLog.objects.all().delete()

    new = access.flow_reauthorize(image)

    assert new is not None and new.pk != old.pk
    assert new.policy_id == backup.pk
    assert new.actor_group_membership.group_id == backup.actor_group_id
    assert (new.token_id, new.client_id, new.gateway_id, new.resource_id) == (
        token.pk,
        world.client.pk,
        world.gateway.pk,
        world.resource.pk,
    )
    end_of_day = (
        timezone.now().astimezone(UTC).replace(hour=23, minute=59, second=59, microsecond=0)
    )
    # Change images carry milliseconds (DjangoJSONEncoder); devices see whole seconds anyway.
    expected = min(old.expires_at, end_of_day)
    assert expected - timedelta(milliseconds=1) < new.expires_at <= expected
    assert new.client_remote_ip == world.client.last_seen_remote_ip
    assert new.gateway_remote_ip == old.gateway_remote_ip
    assert ChangeLog.objects.filter(table="flows", op="insert").count() == 1


def test_reauthorize_accepts_an_instance() -> None:
    world = World()
    old = make_flow(world)
    Flow.objects.filter(pk=old.pk).delete()
    new = access.flow_reauthorize(old)
    assert new is not None and new.policy_id == world.policy.pk
    assert new.expires_at == old.expires_at


@pytest.mark.parametrize(
    "breakage",
    [
        "no_policy",
        "condition_fails",
        "token_expired",
        "token_deleted",
        "client_deleted",
        "gateway_deleted",
        "site_disconnected",
        "flow_already_expired",
        "window_already_over",
    ],
)
def test_reauthorize_refuses(breakage: str) -> None:
    world = World()
    token = client_token(world.actor)
    old = make_flow(world, token=token)
    image = deleted_image(old)
    if breakage == "no_policy":
        world.policy.delete()
    elif breakage == "condition_fails":
        world.policy.conditions = [region("FR")]
        world.policy.save()
    elif breakage == "token_expired":
        token.expires_at = timezone.now() - timedelta(seconds=1)
        token.save()
    elif breakage == "token_deleted":
        token.delete()
    elif breakage == "client_deleted":
        world.client.delete()
    elif breakage == "gateway_deleted":
        world.gateway.delete()
    elif breakage == "site_disconnected":
        ResourceConnection.objects.filter(resource=world.resource).delete()
    elif breakage == "flow_already_expired":
        # Purged by the expiry job: min(policy, old expiry) is in the past (§9 item 13).
        image["expires_at"] = (timezone.now() - timedelta(minutes=1)).isoformat()
    elif breakage == "window_already_over":
        image["expires_at"] = timezone.now().isoformat()
    before = Flow.objects.count()
    assert access.flow_reauthorize(image) is None
    assert Flow.objects.count() == before


def test_other_clients_do_not_leak_into_the_reauthorisation() -> None:
    world = World()
    old = make_flow(world)
    image = deleted_image(old)
    stranger = ClientFactory(account=world.account)  # another actor, no grants
    image["client_id"] = str(stranger.pk)
    assert access.flow_reauthorize(image) is None
