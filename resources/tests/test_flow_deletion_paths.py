"""Every domain path that must end flows does so through `changes.delete` (protocol.md §5.5 list,
§5.6, §6.1), so each deleted flow is recorded and published to the account's sockets, where
gateway channels revoke or re-authorise it. One case per path; a path that keeps a flow alive
is listed too (cosmetic changes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import ActorGroupMembership, Token
from accounts.services.accounts import account_disable
from accounts.services.actors import actor_delete, actor_disable
from accounts.services.groups import membership_remove
from accounts.services.tokens_admin import token_delete, tokens_delete_expired
from accounts.tests.factories import ActorFactory, admin_subject
from firezone.models import ChangeLog
from gateways.services.clients import client_delete, client_remove_verification, client_verify
from gateways.services.gateways import gateway_delete
from gateways.services.sites import site_delete
from resources.models import Flow
from resources.services.flows import flows_delete_expired
from resources.services.policies import policy_delete, policy_disable, policy_update
from resources.services.resources import resource_delete, resource_update
from resources.tests.factories import SiteFactory, World, client_token, make_flow

pytestmark = pytest.mark.django_db


def _published_flow_deletes(callbacks: list[Callable[[], Any]]) -> None:
    """The flows' delete changes are recorded (and handed to on_commit)."""
    assert ChangeLog.objects.filter(table="flows", op="delete").exists()
    assert callbacks


def _static(world: World) -> World:
    world.group.type = "static"
    world.group.save(update_fields=["type"])
    return world


PATHS: dict[str, Callable[[World, Any, Flow], Any]] = {
    "policy deleted": lambda w, s, f: policy_delete(subject=s, policy=w.policy),
    "policy disabled": lambda w, s, f: policy_disable(subject=s, policy=w.policy),
    "policy conditions changed": lambda w, s, f: policy_update(
        subject=s,
        policy=w.policy,
        conditions=[
            {"property": "remote_ip_location_region", "operator": "is_not_in", "values": ["BR"]}
        ],
    ),
    "membership removed": lambda w, s, f: (
        _static(w),
        membership_remove(subject=s, group=w.group, actor=w.actor),
    ),
    "resource deleted": lambda w, s, f: resource_delete(subject=s, resource=w.resource),
    "resource address changed": lambda w, s, f: resource_update(
        subject=s, resource=w.resource, address="other.example.com"
    ),
    "resource ip_stack changed": lambda w, s, f: resource_update(
        subject=s, resource=w.resource, ip_stack="ipv6_only"
    ),
    "resource type changed": lambda w, s, f: resource_update(
        subject=s, resource=w.resource, type="cidr", address="10.0.0.0/24"
    ),
    "resource connection removed": lambda w, s, f: resource_update(
        subject=s, resource=w.resource, connections=[SiteFactory(account=w.account)]
    ),
    "client deleted": lambda w, s, f: client_delete(subject=s, client=w.client),
    "client unverified": lambda w, s, f: (
        client_verify(subject=s, client=w.client),
        client_remove_verification(subject=s, client=w.client),
    ),
    "gateway deleted": lambda w, s, f: gateway_delete(subject=s, gateway=w.gateway),
    "site deleted": lambda w, s, f: site_delete(subject=s, site=w.site),
    "token deleted": lambda w, s, f: token_delete(subject=s, token=f.token),
    "token expired and purged": lambda w, s, f: (
        Token.objects.filter(pk=f.token_id).update(expires_at=timezone.now()),
        tokens_delete_expired(),
    ),
    "actor disabled": lambda w, s, f: actor_disable(subject=s, actor=w.actor),
    "actor deleted": lambda w, s, f: actor_delete(subject=s, actor=w.actor),
    "account disabled": lambda w, s, f: account_disable(account=w.account, reason="test"),
    "flow expired": lambda w, s, f: (
        Flow.objects.filter(pk=f.pk).update(expires_at=timezone.now() - timedelta(seconds=1)),
        flows_delete_expired(),
    ),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_path_deletes_the_flow_through_changes(path, django_capture_on_commit_callbacks) -> None:
    world = World()
    admin = admin_subject(world.account)
    ActorFactory(account=world.account, admin=True)  # never the last admin
    flow = make_flow(world)
    with django_capture_on_commit_callbacks() as callbacks:
        PATHS[path](world, admin, flow)
    assert not Flow.objects.filter(pk=flow.pk).exists(), path
    change = ChangeLog.objects.get(table="flows", op="delete")
    assert change.old_data is not None
    assert change.old_data["id"] == str(flow.pk)
    assert change.old_data["gateway_id"] == str(world.gateway.pk)
    _published_flow_deletes(callbacks)


@pytest.mark.parametrize(
    "change",
    [
        lambda w, s: resource_update(subject=s, resource=w.resource, name="renamed"),
        lambda w, s: resource_update(
            subject=s, resource=w.resource, filters=[{"protocol": "icmp"}]
        ),
        lambda w, s: policy_update(subject=s, policy=w.policy, description="cosmetic"),
    ],
    ids=["resource renamed", "filters changed", "policy description"],
)
def test_cosmetic_changes_keep_flows(change) -> None:
    world = World()
    flow = make_flow(world)
    change(world, admin_subject(world.account))
    assert Flow.objects.filter(pk=flow.pk).exists()
    assert not ChangeLog.objects.filter(table="flows").exists()


def test_tokens_delete_expired_batches_and_closes_sessions(
    django_capture_on_commit_callbacks,
) -> None:
    world = World()
    expired = [client_token(world.actor, expires_in=-timedelta(seconds=1)) for _ in range(3)]
    valid = client_token(world.actor)
    eternal = client_token(world.actor, expires_in=None)
    flow = make_flow(world, token=expired[0])
    with django_capture_on_commit_callbacks() as callbacks:
        assert tokens_delete_expired(limit=2) == 2
        assert tokens_delete_expired(limit=2) == 1
        assert tokens_delete_expired(limit=2) == 0
    assert set(Token.objects.values_list("pk", flat=True)) >= {valid.pk, eternal.pk}
    assert not Token.objects.filter(pk__in=[t.pk for t in expired]).exists()
    assert not Flow.objects.filter(pk=flow.pk).exists()
    # One session disconnect per token, plus the published flow delete.
    assert len(callbacks) >= 4
    assert ActorGroupMembership.objects.filter(pk=world.membership.pk).exists()


def test_periodic_jobs_run_the_services_and_are_scheduled() -> None:
    from accounts.tasks import tokens_delete_expired as tokens_task
    from firezone.celery import app
    from resources.tasks import flows_delete_expired as flows_task

    world = World()
    make_flow(world, expires_at=timezone.now() - timedelta(seconds=1))
    kept = make_flow(world)
    client_token(world.actor, expires_in=-timedelta(seconds=1))
    assert flows_task.delay().get() == 1
    assert tokens_task.delay().get() == 1
    assert list(Flow.objects.all()) == [kept]
    schedule = {e["task"]: e["schedule"] for e in app.conf.beat_schedule.values()}
    assert schedule["resources.tasks.flows_delete_expired"] == 60.0
    assert schedule["accounts.tasks.tokens_delete_expired"] == 300.0
