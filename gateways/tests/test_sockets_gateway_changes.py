"""The gateway socket against a live daphne, driven through the channel-layer messages the client
socket sends and through domain services: flow deletions (protocol.md §5.5, §7 scenarios
58-60), resource changes (61-64) and deletions of the gateway or its token (65, 66). Every frame
is asserted whole.

Shared setup: gateways/tests/_sockets_gateway.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import ActorGroupMembership, Token
from accounts.services.accounts import account_disable
from accounts.tests.factories import GroupFactory, MembershipFactory
from gateways.models import Client
from gateways.services.gateways import gateway_delete
from gateways.tests._sockets_gateway import (
    GW_HEADERS,
    SPEC_FILTERS,
    SPEC_FILTERS_WIRE,
    authorize,
    delete_atomically,
    expiry_updated,
    gw_frame,
    join_gateway,
    make_flow,
    make_setup,
    other_client,
    reject,
    resource,
)
from gateways.tests.sockets import (
    GATEWAY_PATH,
)
from resources.models import Flow, Policy
from resources.services.policies import policy_delete
from resources.services.resources import resource_update
from resources.tests.factories import PolicyFactory
from tests.live import Rejected, reply, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# ------------------------------------------------------------------ 58-60: flow deletions (§5.5)


async def test_58_expiry_update_when_other_flows_remain(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        f1 = await run_sync(make_flow, setup, gateway, expires_in=timedelta(hours=1))
        f2 = await run_sync(make_flow, setup, gateway, expires_in=timedelta(days=1))
        await authorize(device, setup, gateway, f1)
        await authorize(device, setup, gateway, f2)
        await run_sync(delete_atomically, Flow.objects.filter(pk=f1.pk))
        assert await device.recv() == expiry_updated(setup.client.pk, setup.rdns.pk, f2.expires_at)
        await device.expect_nothing(0.5)


async def test_59_reject_on_last_flow(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(policy_delete, subject=setup.admin(), policy=setup.policy)
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        await device.expect_nothing(0.5)
        assert not Flow.objects.exists()


async def test_60_other_gateways_flows_are_ignored(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    device, gateway, _ = await join_gateway(live, world)
    other, other_gateway, _ = await join_gateway(live, world)
    async with device, other:
        c2, c2_token, c2_membership, c2_policy = await run_sync(other_client, setup)
        flow = await run_sync(make_flow, setup, gateway)
        c2_flow = await run_sync(
            make_flow,
            setup,
            gateway,
            client=c2,
            token=c2_token,
            membership=c2_membership,
            policy=c2_policy,
        )
        elsewhere = await run_sync(make_flow, setup, other_gateway)
        await authorize(device, setup, gateway, flow)
        await authorize(device, setup, gateway, c2_flow)
        await authorize(other, setup, other_gateway, elsewhere)

        await run_sync(delete_atomically, Flow.objects.filter(pk=elsewhere.pk))
        # ... re-authorised on its own gateway (same policy still grants it), nothing here.
        [update] = [await other.recv()]
        assert update["event"] == "access_authorization_expiry_updated"
        await device.expect_nothing(0.5)

        await run_sync(policy_delete, subject=setup.admin(), policy=c2_policy)
        assert await device.recv() == reject(c2.pk, setup.rdns.pk)
        await device.expect_nothing(0.5)
        await other.expect_nothing(0.1)


async def test_last_flow_reauthorised_under_another_policy(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)

    def second_policy() -> Policy:
        group = GroupFactory(account=setup.account, name="G1b")
        MembershipFactory(group=group, actor=setup.world.actor, account=setup.account)
        return PolicyFactory(account=setup.account, actor_group=group, resource=setup.rdns)

    async with device:
        backup = await run_sync(second_policy)
        flow = await run_sync(make_flow, setup, gateway, expires_in=timedelta(hours=2))
        await authorize(device, setup, gateway, flow)
        await run_sync(policy_delete, subject=setup.admin(), policy=setup.policy)
        # min(policy expiry: none, deleted flow's expiry)
        assert await device.recv() == expiry_updated(
            setup.client.pk, setup.rdns.pk, flow.expires_at
        )
        [replacement] = Flow.objects.all()
        assert (replacement.policy_id, replacement.gateway_id, replacement.token_id) == (
            backup.pk,
            gateway.pk,
            setup.token.pk,
        )
        # The replacement is cached: deleting it goes through §5.5 again.
        await run_sync(policy_delete, subject=setup.admin(), policy=backup)
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        await device.expect_nothing(0.3)


async def test_flows_of_a_disabled_account_are_not_reauthorised(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(account_disable, account=setup.account, reason="test")
        # The socket closes too (a disabled account keeps no devices); a reject may beat it.
        frames = await device.expect_closed()
        assert frames in ([], [reject(setup.client.pk, setup.rdns.pk)])
        assert not Flow.objects.exists()


async def test_membership_removal_and_client_deletion_reject(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(
            delete_atomically, ActorGroupMembership.objects.filter(pk=setup.membership.pk)
        )
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)

        membership = await run_sync(
            MembershipFactory, group=setup.g1, actor=setup.world.actor, account=setup.account
        )
        flow = await run_sync(make_flow, setup, gateway, membership=membership)
        await authorize(device, setup, gateway, flow)
        await run_sync(delete_atomically, Client.objects.filter(pk=setup.client.pk))
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        await device.expect_nothing(0.3)


# ------------------------------------------------------------------ 61-64: resource changes


async def test_61_address_change_rejects_cached_pairs(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    async with device:
        flow = await run_sync(make_flow, setup, gateway)
        await authorize(device, setup, gateway, flow)
        await run_sync(
            resource_update, subject=setup.admin(), resource=setup.rdns, address="*.example.org"
        )
        assert await device.recv() == reject(setup.client.pk, setup.rdns.pk)
        # The flow deletions of the same update find the pair gone: no re-authorisation.
        await device.expect_nothing(0.5)
        assert not Flow.objects.exists()


async def test_62_63_filters_change_reaches_every_gateway_and_rename_nothing(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    device, _gateway, _ = await join_gateway(live, world)
    unrelated, _, _ = await join_gateway(live, world)  # no flow for Rdns
    async with device, unrelated:
        await run_sync(
            resource_update, subject=setup.admin(), resource=setup.rdns, filters=SPEC_FILTERS
        )
        expected = gw_frame(
            "resource_updated",
            {
                "id": str(setup.rdns.pk),
                "name": "httpbin",
                "type": "dns",
                "address": "*.httpbin",
                "filters": SPEC_FILTERS_WIRE,
            },
        )
        assert await device.recv() == expected
        assert await unrelated.recv() == expected

        await run_sync(resource_update, subject=setup.admin(), resource=setup.rdns, name="renamed")
        await device.expect_nothing(0.5)
        await unrelated.expect_nothing(0.1)


async def test_64_old_gateway_adaptation(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    glob = await run_sync(resource, world, address="**.example.com", name="glob")
    inner = await run_sync(resource, world, address="example.*.com", name="inner")
    device, _, _init = await join_gateway(live, world, ua="Linux/24.04 gateway/1.1.0")
    async with device:
        await run_sync(resource_update, subject=setup.admin(), resource=glob, filters=SPEC_FILTERS)
        assert await device.recv() == gw_frame(
            "resource_updated",
            {
                "id": str(glob.pk),
                "name": "glob",
                "type": "dns",
                "address": "*.example.com",
                "filters": SPEC_FILTERS_WIRE,
            },
        )
        await run_sync(resource_update, subject=setup.admin(), resource=inner, filters=SPEC_FILTERS)
        await device.expect_nothing(0.5)


# ------------------------------------------------------------------ 65, 66: deletions


async def test_65_gateway_deleted(live) -> None:
    setup = await run_sync(make_setup)
    device, gateway, _ = await join_gateway(live, setup.world)
    other, _, _ = await join_gateway(live, setup.world)
    async with device, other:
        await run_sync(gateway_delete, subject=setup.admin(), gateway=gateway)
        assert await device.expect_closed() == [gw_frame("phx_close", {})]
        ref = await other.send("phoenix", "heartbeat", {})
        assert await other.recv() == reply("phoenix", ref)


async def test_66_site_token_revoked(live) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    params = world.gateway_params()
    first, _, _ = await join_gateway(live, world, params=params)
    second, _, _ = await join_gateway(live, world)
    async with first, second:
        await run_sync(delete_atomically, Token.objects.filter(gateway_group=world.site))
        assert await first.expect_closed() == []
        assert await second.expect_closed() == []
    with pytest.raises(Rejected) as info:
        await live.device().connect(GATEWAY_PATH, params, GW_HEADERS)
    assert (info.value.status, info.value.text) == (401, "Invalid token")
