"""The change log is the truth, Redis the fast path (`firezone.catchup`), on a live daphne with
real sockets: a write whose publishes all fail (the writing process's Redis is unreachable, the
server's is fine) still reaches the devices, once, within the catch-up's two polls.

The writes run in this test process with its Redis URL pointed at a closed port
(`redis_unreachable`); the daphne keeps the real Redis.
"""

from __future__ import annotations

import time

import pytest

from accounts.services.accounts import account_disable
from firezone import changes
from gateways.services.clients import client_delete
from gateways.services.gateways import gateway_delete
from gateways.services.relays import relay_delete
from gateways.tests._catchup import redis_unreachable
from gateways.tests._sockets_gateway import join_gateway, make_setup, reject
from gateways.tests.test_sockets_gateway_end_to_end import complete_flow, create_flow, join_client
from gateways.tests.test_sockets_relay import DISCONNECT, admin, join_relay
from resources.models import Flow
from resources.services.policies import policy_disable
from tests.live import frame, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Two polls of the server's catch-up (STREAM_CATCHUP_SECONDS = 1) and a reload, with margin.
WITHIN = 4.0


async def test_a_lost_policy_disable_reaches_the_client_and_the_gateway_once(
    live, settings
) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    gw, _, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world)
    async with gw, client:
        await create_flow(client, setup.rdns)
        await complete_flow(gw, client)
        assert await run_sync(Flow.objects.count) == 1

        redis_unreachable(settings)
        started = time.monotonic()
        await run_sync(policy_disable, subject=setup.admin(), policy=setup.policy)
        assert await run_sync(Flow.objects.count) == 0  # committed; nothing was published

        assert await client.recv(WITHIN) == frame("client", "resource_deleted", str(setup.rdns.pk))
        assert await gw.recv(WITHIN) == reject(row.pk, setup.rdns.pk)
        assert time.monotonic() - started < WITHIN
        assert "never arrived on the device stream" in live.log()
        # Exactly once: later polls find nothing missing.
        await client.expect_nothing(2.5)
        await gw.expect_nothing(0.1)


async def test_a_lost_token_deletion_still_closes_its_socket(live, settings) -> None:
    setup = await run_sync(make_setup)
    client, _, _ = await join_client(live, setup.world)
    token_id = setup.token.pk
    async with client:
        redis_unreachable(settings)

        def delete_token() -> None:
            from django.db import transaction

            with transaction.atomic():
                changes.delete(setup.token)

        await run_sync(delete_token)
        await client.expect_closed(WITHIN)
        assert f"token:{token_id} ended: closing 1 socket(s)" in live.log()


async def test_a_lost_account_disable_still_closes_its_devices(live, settings) -> None:
    setup = await run_sync(make_setup)
    world = setup.world
    gw, _, _ = await join_gateway(live, world)
    client, _, _ = await join_client(live, world)
    async with gw, client:
        redis_unreachable(settings)
        await run_sync(account_disable, account=world.account, reason="Stripe subscription paused")
        await client.expect_closed(WITHIN)
        await gw.expect_closed(WITHIN)
        assert f"account:{world.account.pk} ended: closing 2 socket(s)" in live.log()


async def test_lost_device_deletions_still_close_their_sockets(live, settings) -> None:
    """A reload does not tell a socket that its own row went: the missed rows are handed over."""
    setup = await run_sync(make_setup)
    world = setup.world
    gw, gateway, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world)
    async with gw, client:
        redis_unreachable(settings)
        await run_sync(gateway_delete, subject=setup.admin(), gateway=gateway.pk)
        await run_sync(client_delete, subject=setup.admin(), client=row.pk)
        assert [f["event"] for f in await gw.expect_closed(WITHIN)] == ["phx_close"]
        assert [f["event"] for f in await client.expect_closed(WITHIN)] == ["phx_close"]


async def test_a_lost_relay_deletion_still_disconnects_the_relay(live, settings) -> None:
    setup = await run_sync(make_setup)
    device, relay = await join_relay(live, setup.world, global_=False)
    async with device:
        redis_unreachable(settings)
        await run_sync(relay_delete, subject=admin(setup.world), relay=relay)
        assert await device.expect_closed(WITHIN) == [DISCONNECT]
        assert f"relay:{relay.pk} ended" in live.log()


async def test_normal_publishes_are_pushed_once_with_the_catch_up_polling(live) -> None:
    """The fast path and the catch-up together never push a change twice."""
    setup = await run_sync(make_setup)
    world = setup.world
    log_start = len(live.log())
    gw, _, _ = await join_gateway(live, world)
    client, row, _ = await join_client(live, world)
    async with gw, client:
        await create_flow(client, setup.rdns)
        await complete_flow(gw, client)
        await run_sync(policy_disable, subject=setup.admin(), policy=setup.policy)
        assert await client.recv() == frame("client", "resource_deleted", str(setup.rdns.pk))
        assert await gw.recv() == reject(row.pk, setup.rdns.pk)
        # Several polls later: nothing more, and the catch-up found nothing missing.
        await client.expect_nothing(2.5)
        await gw.expect_nothing(0.1)
        assert "never arrived" not in live.log()[log_start:]
