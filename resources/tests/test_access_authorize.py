"""Authorisation (protocol.md §5.4 step 1) and re-authorisation (§5.5) of a flow.

Shared helpers: resources/tests/_access.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from firezone import changes
from firezone.errors import NotFound
from firezone.models import ChangeLog
from resources import access
from resources.models import Flow, ResourceConnection
from resources.services import flows as flow_svc
from resources.tests._access import NOON, connectable_ids, ctx_for, grant, region, today, window
from resources.tests.factories import (
    ClientFactory,
    ResourceFactory,
    World,
    client_subject,
    client_token,
    make_flow,
)

pytestmark = pytest.mark.django_db

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
