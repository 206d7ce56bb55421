"""Flow authorisation, expiry and listing (domain.md §2.13-§2.14, §4.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.auth import Context
from accounts.tests.factories import (
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    admin_subject,
    subject_for,
)
from firezone import changes
from firezone.errors import NotFound, Unauthorized
from firezone.models import ChangeLog
from resources import time_windows
from resources.models import Flow
from resources.selectors import flows as sel
from resources.services import flows as svc
from resources.tests.factories import (
    ClientFactory,
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

ADMIN, API, USER, SA = "account_admin_user", "api_client", "account_user", "service_account"


def _noon_today() -> datetime:
    return timezone.now().astimezone(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def _window(day_offset: int = 0, ranges: str = "09:00-18:00") -> dict:
    day = time_windows.DAYS_OF_WEEK[(_noon_today().weekday() + day_offset) % 7]
    return {
        "property": "current_utc_datetime",
        "operator": "is_in_day_of_week_time_ranges",
        "values": [f"{day}/{ranges}/UTC"],
    }


def _authorize(world: World, subject=None, **kwargs):
    subject = subject or client_subject(world.actor)
    kwargs.setdefault(
        "request_context", svc.client_request_context(world.client, now=_noon_today())
    )
    return svc.flow_authorize(
        subject=subject,
        client=kwargs.pop("client", world.client),
        resource=kwargs.pop("resource", world.resource),
        gateway=kwargs.pop("gateway", world.gateway),
        **kwargs,
    )


def test_authorize_stores_everything_and_is_not_broadcast(django_capture_on_commit_callbacks):
    world = World()
    token = client_token(world.actor)
    context = Context(remote_ip="192.0.2.44", user_agent="iOS/17 apple-client/1.4.0")
    subject = client_subject(world.actor, token, context=context)
    with django_capture_on_commit_callbacks() as callbacks:
        flow = _authorize(world, subject)
    flow.refresh_from_db()
    assert flow.policy_id == world.policy.pk
    assert flow.actor_group_membership_id == world.membership.pk
    assert flow.token_id == token.pk
    assert (flow.client_remote_ip, flow.client_user_agent) == ("192.0.2.44", context.user_agent)
    assert flow.gateway_remote_ip == world.gateway.last_seen_remote_ip
    assert flow.expires_at == token.expires_at  # no conditions: the session's end
    assert ChangeLog.objects.filter(table="flows", op="insert").count() == 1
    assert callbacks == []  # flow inserts are logged, never published (§4.1)


def test_time_window_sets_expiry_and_longest_policy_wins():
    world = World()
    world.policy.conditions = [_window(ranges="09:00-14:00")]
    world.policy.save()
    longer_group = GroupFactory(account=world.account)
    longer_membership = MembershipFactory(
        group=longer_group, actor=world.actor, account=world.account
    )
    longer = PolicyFactory(
        account=world.account,
        actor_group=longer_group,
        resource=world.resource,
        conditions=[_window(ranges="10:00-20:00")],
    )
    flow = _authorize(world)
    assert flow.policy_id == longer.pk
    assert flow.actor_group_membership_id == longer_membership.pk
    assert flow.expires_at == _noon_today().replace(hour=20)


def test_token_expiry_caps_the_window():
    world = World()
    world.policy.conditions = [_window(ranges="true")]
    world.policy.save()
    token = client_token(world.actor, expires_in=timedelta(minutes=5))
    flow = _authorize(world, client_subject(world.actor, token))
    assert flow.expires_at == token.expires_at


def test_forbidden_carries_violated_properties_and_writes_nothing():
    world = World()
    world.policy.conditions = [
        {"property": "remote_ip_location_region", "operator": "is_in", "values": ["DE"]},
        _window(day_offset=1),
        {"property": "remote_ip_location_region", "operator": "is_in", "values": ["FR"]},
    ]
    world.policy.save()
    with pytest.raises(svc.FlowForbidden) as exc:
        _authorize(world)
    assert exc.value.code == "forbidden"
    assert exc.value.violated_properties == ("remote_ip_location_region", "current_utc_datetime")
    assert not Flow.objects.exists()
    assert not ChangeLog.objects.filter(table="flows").exists()


def test_disabled_policy_or_unconnected_site_is_forbidden():
    world = World()
    other_gateway = GatewayFactory(group=SiteFactory(account=world.account), account=world.account)
    with pytest.raises(svc.FlowForbidden) as exc:
        _authorize(world, gateway=other_gateway)
    assert exc.value.violated_properties == ()
    world.policy.disabled_at = timezone.now()
    world.policy.save()
    with pytest.raises(svc.FlowForbidden):
        _authorize(world)


def test_service_account_token_without_expiry():
    world = World(actor_type=SA)
    token = client_token(world.actor, expires_in=None)
    subject = client_subject(world.actor, token)
    assert subject.identity is None and subject.expires_at is None
    flow = _authorize(world, subject)
    assert flow.expires_at == _noon_today() + svc.MAX_FLOW_LIFETIME
    world.policy.conditions = [_window(ranges="true")]
    world.policy.save()
    flow = _authorize(world, subject)
    assert flow.expires_at == _noon_today().replace(hour=23, minute=59, second=59)


def test_provider_condition_and_default_request_context():
    world = World()
    identity = IdentityFactory(actor=world.actor, account=world.account)
    world.client.identity = identity
    world.client.save()
    ctx = svc.client_request_context(world.client)
    assert ctx.provider_id == identity.provider_id
    assert ctx.remote_ip == world.client.last_seen_remote_ip and not ctx.client_verified
    world.policy.conditions = [
        {"property": "provider_id", "operator": "is_in", "values": [str(identity.provider_id)]}
    ]
    world.policy.save()
    token = client_token(world.actor)
    flow = svc.flow_authorize(
        subject=client_subject(world.actor, token),
        client=world.client.pk,
        resource=world.resource.pk,
        gateway=world.gateway.pk,
    )
    assert flow.policy_id == world.policy.pk


def test_other_actors_client_and_other_account_objects_are_not_found():
    world = World()
    stranger = ClientFactory(actor=ActorFactory(account=world.account), account=world.account)
    with pytest.raises(NotFound):
        _authorize(world, client=stranger)
    with pytest.raises(NotFound):
        _authorize(world, gateway=GatewayFactory())
    with pytest.raises(NotFound):
        _authorize(world, resource=ResourceFactory())
    assert not Flow.objects.exists()


@pytest.mark.parametrize("actor_type", [ADMIN, API, USER, SA])
def test_every_actor_type_may_create_flows_but_only_managers_list(actor_type):
    world = World(actor_type=actor_type)
    flow = _authorize(world)
    lister = subject_for(world.actor)
    if actor_type in (ADMIN, API):
        assert [f.pk for f in sel.flow_list_for(lister, client=world.client)] == [flow.pk]
    else:
        with pytest.raises(Unauthorized):
            sel.flow_list_for(lister, policy=world.policy)


def test_expired_subject_cannot_create_flows():
    world = World()
    subject = subject_for(world.actor, expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Unauthorized):
        _authorize(world, subject)


def test_flow_list_filters_and_isolation():
    world = World()
    flow = make_flow(world)
    make_flow(World())  # another account's
    admin = admin_subject(world.account)
    for key, value in [
        ("policy", world.policy),
        ("resource", world.resource.pk),
        ("client", world.client),
        ("actor", world.actor),
        ("gateway", world.gateway),
    ]:
        assert [f.pk for f in sel.flow_list_for(admin, **{key: value})] == [flow.pk], key
    assert [f.pk for f in sel.flow_list_for(admin)] == [flow.pk]


def test_delete_expired_records_deletes(django_capture_on_commit_callbacks):
    world = World()
    expired = make_flow(world, expires_at=timezone.now() - timedelta(seconds=1))
    live = make_flow(world)
    with django_capture_on_commit_callbacks() as callbacks:
        assert svc.flows_delete_expired() == 1
    assert list(Flow.objects.all()) == [live]
    change = ChangeLog.objects.get(table="flows", op="delete")
    assert change.old_data is not None
    assert change.old_data["id"] == str(expired.pk)
    assert len(callbacks) == 1


def test_delete_stale_for_client():
    world = World()
    other = ResourceFactory(account=world.account)
    keep = make_flow(world)
    make_flow(world, resource=other)
    make_flow(World())  # other account, untouched
    deleted = svc.flows_delete_stale_for_client(
        client=world.client, connectable_resource_ids=[world.resource.pk]
    )
    assert deleted == 1
    assert Flow.objects.filter(client=world.client).get() == keep
    assert Flow.objects.count() == 2


# --- flows decided in memory (the client socket's hub) ------------------------------------------


def _decided(world: World, subject, **overrides):
    values = {
        "subject": subject,
        "client": world.client,
        "gateway": world.gateway,
        "resource_id": world.resource.pk,
        "policy_id": world.policy.pk,
        "membership_id": world.membership.pk,
        "expires_at": timezone.now() + timedelta(hours=1),
    }
    return svc.flow_insert_decided(**(values | overrides))


@pytest.mark.django_db(transaction=True)
def test_decided_flow_is_one_statement_logged_like_record(django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    world = World()
    token = client_token(world.actor)
    context = Context(remote_ip="192.0.2.44", user_agent="iOS/17 apple-client/1.4.0")
    subject = client_subject(world.actor, token, context=context)
    with CaptureQueriesContext(connection) as queries:
        flow = _decided(world, subject)
    assert len(queries) == 1
    stored = Flow.objects.get(pk=flow.pk)
    assert (stored.policy_id, stored.actor_group_membership_id, stored.token_id) == (
        world.policy.pk,
        world.membership.pk,
        token.pk,
    )
    assert stored.client_remote_ip == "192.0.2.44"
    entry = ChangeLog.objects.get(table="flows", op="insert")
    assert entry.data == changes.row_image(stored)
    assert entry.subject is not None
    assert entry.subject["token_id"] == str(token.pk) and entry.xid


@pytest.mark.django_db(transaction=True)
def test_decided_flow_for_a_deleted_policy_is_not_found_and_writes_nothing():
    world = World()
    subject = client_subject(world.actor, client_token(world.actor))
    policy_id = world.policy.pk
    world.policy.delete()
    with pytest.raises(NotFound):
        _decided(world, subject, policy_id=policy_id)
    assert not Flow.objects.exists()
    assert not ChangeLog.objects.filter(table="flows").exists()


def test_decided_flow_of_another_actors_client_is_not_found():
    world, other = World(), World()
    subject = client_subject(world.actor, client_token(world.actor))
    with pytest.raises(NotFound):
        _decided(world, subject, client=other.client)


@pytest.mark.django_db(transaction=True)
def test_create_flow_database_work_is_two_statements() -> None:
    """The client socket's create_flow (protocol.md §5.4 steps 2-3 and the insert): one gateway
    query and one statement for the flow and its change-log row (issue 12: at most 3)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from resources import access

    world = World()
    world.gateway.last_seen_version = "1.4.17"  # create_flow needs a 1.4 gateway
    world.gateway.save()
    subject = client_subject(world.actor, client_token(world.actor))
    resource = access.client_access_load(world.client).resources[world.resource.pk]
    with CaptureQueriesContext(connection) as queries:
        gateway = access.gateway_choose(
            account_id=world.account.pk,
            client_id=world.client.pk,
            resource=resource,
            client_version="1.4.0",
            online_gateway_ids=[world.gateway.pk],
        )
        assert gateway == world.gateway
        _decided(world, subject, gateway=gateway)
    assert len(queries) == 2
