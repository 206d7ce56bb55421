"""Policy services and selectors (domain.md §2.13, §3.3, §4.1)."""

from __future__ import annotations

import pytest

from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    ProviderFactory,
    admin_subject,
    subject_for,
)
from firezone.errors import NotFound, Unauthorized, ValidationFailed
from firezone.models import ChangeLog
from resources.models import Flow, Policy
from resources.selectors import policies as sel
from resources.services import policies as svc
from resources.tests.factories import PolicyFactory, ResourceFactory, World, make_flow

pytestmark = pytest.mark.django_db

ADMIN, API, USER, SA = "account_admin_user", "api_client", "account_user", "service_account"
REGION = {"property": "remote_ip_location_region", "operator": "is_in", "values": ["us"]}


def _changes(table: str, op: str):
    return ChangeLog.objects.filter(table=table, op=op)


def test_create_cleans_input_and_records(django_capture_on_commit_callbacks):
    account = AccountFactory()
    subject = admin_subject(account)
    group, resource = GroupFactory(account=account), ResourceFactory(account=account)
    with django_capture_on_commit_callbacks() as callbacks:
        policy = svc.policy_create(
            subject=subject,
            actor_group_id=group.pk,
            resource_id=str(resource.pk),
            description="  Engineers  ",
            conditions=[REGION],
        )
    policy.refresh_from_db()
    assert policy.description == "Engineers"
    assert policy.conditions == [
        {"property": "remote_ip_location_region", "operator": "is_in", "values": ["US"]}
    ]
    assert policy.account_id == account.pk and policy.persistent_id
    assert policy.created_by == "identity"
    assert _changes("policies", "insert").count() == 1
    assert len(callbacks) == 1


def test_create_rejects_bad_input_and_writes_nothing():
    account = AccountFactory()
    subject = admin_subject(account)
    group, resource = GroupFactory(account=account), ResourceFactory(account=account)
    with pytest.raises(ValidationFailed) as exc:
        svc.policy_create(
            subject=subject,
            actor_group_id=group.pk,
            resource_id=resource.pk,
            description="d" * 1025,
            conditions=[{"property": "remote_ip", "operator": "is_in", "values": ["x"]}],
        )
    errors = exc.value.errors
    assert errors["description"] == ["should be at most 1024 character(s)"]
    assert "conditions.0.operator" in errors and "conditions.0.values" in errors
    with pytest.raises(ValidationFailed) as exc:
        svc.policy_create(subject=subject, actor_group_id=None, resource_id="")
    assert set(exc.value.errors) == {"actor_group_id", "resource_id"}
    assert Policy.objects.count() == 0
    assert not ChangeLog.objects.filter(table="policies").exists()


def test_time_condition_refused_on_internet_resource():
    account = AccountFactory()
    internet = ResourceFactory(account=account, internet=True)
    with pytest.raises(ValidationFailed) as exc:
        svc.policy_create(
            subject=admin_subject(account),
            actor_group_id=GroupFactory(account=account).pk,
            resource_id=internet.pk,
            conditions=[
                {
                    "property": "current_utc_datetime",
                    "operator": "is_in_day_of_week_time_ranges",
                    "values": ["M/true/UTC"],
                }
            ],
        )
    assert "conditions.0.property" in exc.value.errors


def test_duplicate_group_and_resource():
    world = World()
    subject = admin_subject(world.account)
    with pytest.raises(ValidationFailed) as exc:
        svc.policy_create(
            subject=subject, actor_group_id=world.group.pk, resource_id=world.resource.pk
        )
    assert exc.value.errors == {"__all__": [svc.MSG_DUPLICATE]}
    other = PolicyFactory(account=world.account, resource=world.resource)
    with pytest.raises(ValidationFailed):
        svc.policy_update(subject=subject, policy=other, actor_group_id=world.group.pk)


def test_tenant_isolation_of_group_and_resource():
    account = AccountFactory()
    subject = admin_subject(account)
    mine_group, mine_resource = GroupFactory(account=account), ResourceFactory(account=account)
    with pytest.raises(NotFound):
        svc.policy_create(
            subject=subject, actor_group_id=GroupFactory().pk, resource_id=mine_resource.pk
        )
    with pytest.raises(NotFound):
        svc.policy_create(
            subject=subject, actor_group_id=mine_group.pk, resource_id=ResourceFactory().pk
        )
    assert Policy.objects.count() == 0
    foreign = PolicyFactory()
    for call in (
        lambda: svc.policy_update(subject=subject, policy=foreign, description="x"),
        lambda: svc.policy_disable(subject=subject, policy=foreign),
        lambda: svc.policy_delete(subject=subject, policy=foreign.pk),
        lambda: sel.policy_get_by_id_or_persistent_id(subject, foreign.pk),
    ):
        with pytest.raises(NotFound):
            call()
    assert list(sel.policy_list(subject)) == []


def test_update_conditions_ends_flows_description_does_not():
    world = World()
    subject = admin_subject(world.account)
    flow = make_flow(world)
    svc.policy_update(subject=subject, policy=world.policy, description="just words")
    assert Flow.objects.filter(pk=flow.pk).exists()
    svc.policy_update(subject=subject, policy=world.policy, conditions=[REGION])
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert _changes("flows", "delete").get().old_data["id"] == str(flow.pk)
    assert _changes("policies", "update").count() == 2


@pytest.mark.parametrize("field", ["actor_group_id", "resource_id"])
def test_update_group_or_resource_ends_flows(field):
    world = World()
    subject = admin_subject(world.account)
    flow = make_flow(world)
    target = (
        GroupFactory(account=world.account)
        if field == "actor_group_id"
        else ResourceFactory(account=world.account)
    )
    policy = svc.policy_update(subject=subject, policy=world.policy, **{field: target.pk})
    assert getattr(policy, field) == target.pk
    assert not Flow.objects.filter(pk=flow.pk).exists()


def test_disable_keeps_timestamp_ends_flows_and_enable_clears(django_capture_on_commit_callbacks):
    world = World()
    subject = admin_subject(world.account)
    flow = make_flow(world)
    with django_capture_on_commit_callbacks() as callbacks:
        policy = svc.policy_disable(subject=subject, policy=world.policy)
    first = policy.disabled_at
    assert first is not None
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert _changes("flows", "delete").count() == 1
    assert len(callbacks) == 2  # policy update + flow delete
    assert svc.policy_disable(subject=subject, policy=policy).disabled_at == first
    assert _changes("policies", "update").count() == 1
    assert svc.policy_enable(subject=subject, policy=policy).disabled_at is None
    assert _changes("policies", "update").count() == 2


def test_delete_cascades_flows():
    world = World()
    make_flow(world)
    svc.policy_delete(subject=admin_subject(world.account), policy=world.policy)
    assert not Policy.objects.exists() and not Flow.objects.exists()
    assert _changes("policies", "delete").count() == 1
    assert _changes("flows", "delete").count() == 1


def test_policies_delete_for_resource_group_provider():
    world = World()
    subject = admin_subject(world.account)
    PolicyFactory(account=world.account, resource=world.resource)
    PolicyFactory(account=world.account, actor_group=world.group)
    provider = ProviderFactory(account=world.account, oidc=True)
    synced = GroupFactory(account=world.account, provider=provider, provider_identifier="G:1")
    PolicyFactory(account=world.account, actor_group=synced)
    untouched = PolicyFactory()
    assert svc.policies_delete_for(subject=subject, provider=provider) == 1
    assert svc.policies_delete_for(subject=subject, resource=world.resource) == 2
    assert svc.policies_delete_for(subject=subject, actor_group=world.group) == 1
    assert list(Policy.objects.all()) == [untouched]
    with pytest.raises(NotFound):
        svc.policies_delete_for(subject=subject, resource=untouched.resource)


@pytest.mark.parametrize(
    ("actor_type", "allowed"), [(ADMIN, True), (API, True), (USER, False), (SA, False)]
)
def test_manage_permissions(actor_type, allowed):
    world = World()
    subject = subject_for(ActorFactory(account=world.account, type=actor_type))
    calls = [
        lambda: svc.policy_create(
            subject=subject,
            actor_group_id=GroupFactory(account=world.account).pk,
            resource_id=world.resource.pk,
        ),
        lambda: svc.policy_update(subject=subject, policy=world.policy, description="x"),
        lambda: svc.policy_disable(subject=subject, policy=world.policy),
        lambda: svc.policy_enable(subject=subject, policy=world.policy),
        lambda: svc.policy_delete(subject=subject, policy=world.policy),
        lambda: svc.policies_delete_for(subject=subject, actor_group=world.group),
    ]
    for call in calls:
        if allowed:
            call()
        else:
            with pytest.raises(Unauthorized):
                call()


def test_view_available_scope():
    world = World(actor_type=SA)
    other = PolicyFactory(account=world.account)
    member = subject_for(world.actor)
    assert [p.pk for p in sel.policy_list(member)] == [world.policy.pk]
    assert sel.policy_get_by_id_or_persistent_id(member, world.policy.pk).pk == world.policy.pk
    assert sel.policy_get_by_id_or_persistent_id(member, world.policy.persistent_id)
    with pytest.raises(NotFound):
        sel.policy_get_by_id_or_persistent_id(member, other.pk)
    admin = admin_subject(world.account)
    assert {p.pk for p in sel.policy_list(admin)} == {world.policy.pk, other.pk}
    assert [p.pk for p in sel.policy_list(admin, resource_id=other.resource_id)] == [other.pk]
    svc.policy_disable(subject=admin, policy=other)
    assert [p.pk for p in sel.policy_list(admin, disabled=True)] == [other.pk]


def test_policies_for_client_resource_system_lookup():
    world = World()
    PolicyFactory(account=world.account, resource=world.resource)  # group without the actor
    found = sel.policies_for_client_resource(
        account_id=world.account.pk, actor_id=world.actor.pk, resource_id=world.resource.pk
    )
    assert [p.pk for p in found] == [world.policy.pk]
    Policy.objects.filter(pk=world.policy.pk).update(disabled_at="2024-01-01T00:00:00Z")
    assert not sel.policies_for_client_resource(
        account_id=world.account.pk, actor_id=world.actor.pk, resource_id=world.resource.pk
    ).exists()
