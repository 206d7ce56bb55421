"""The account hub and the change-log catch-up (`firezone.catchup`), in-process with a real Redis
and database: a transaction whose publish failed is healed by a reload (reason "missed") after
the grace poll; the fast path and the catch-up together push every change exactly once, also
when the "lost" message turns up after the reload.

The fake client socket must end told exactly the database truth, frame by frame. Shared pieces:
gateways/tests/_hub_reload.py.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from firezone import catchup, stream
from firezone.changes import Change
from firezone.models import ChangeLog
from gateways import wire
from gateways.hub import hub as hubs
from gateways.tests._catchup import redis_unreachable
from gateways.tests._hub_reload import (
    converged,
    eventually,
    grant_two,
    joined_fixture,  # noqa: F401
    reloads,
    rename_one,
    revoke_two,
    settle,
)
from tests.live import run_sync

pytestmark = pytest.mark.django_db(transaction=True)

POLL = 0.1


@pytest.fixture(autouse=True)
def fast_polls(settings) -> None:
    settings.STREAM_CATCHUP_SECONDS = POLL


def _last_transaction(account_id: Any) -> tuple[int, list[dict[str, Any]]]:
    """The xid and the stream changes of the account's latest transaction, from the log."""
    rows = ChangeLog.objects.filter(account_id=account_id).order_by("-lsn")
    xid = rows.first().xid  # type: ignore[union-attr]
    changes = [
        asdict(
            Change(
                lsn=r.lsn,
                table=r.table,
                op=r.op,  # type: ignore[arg-type]
                account_id=str(r.account_id),
                old=r.old_data,
                new=r.data,
                xid=r.xid,
            )
        )
        for r in rows.filter(xid=xid).order_by("lsn")
    ]
    return xid, changes


async def test_a_lost_publish_is_healed_by_one_reload_after_the_grace_poll(
    joined, settings
) -> None:
    world, hub, fake = joined.world, joined.hub, joined.fake
    before = reloads("missed")
    real_url = settings.REDIS_URL
    redis_unreachable(settings)
    await run_sync(grant_two, world)
    settings.REDIS_URL = real_url
    expected = await converged(fake, world, timeout=5 * POLL + 2)
    assert reloads("missed") == before + 1
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, expected[1])]
    # The hub is exact again: later polls advance its ledger and find nothing missing.
    ledger = hub.ledger
    assert ledger is not None
    polls = catchup.of_loop().polls
    await eventually(lambda: catchup.of_loop().polls >= polls + 3, what="three more polls")
    assert reloads("missed") == before + 1
    assert fake.take_frames() == []


async def test_the_lost_message_arriving_after_the_reload_is_not_pushed_again(
    joined, settings
) -> None:
    """A publish that was only slow: the catch-up reloaded, then the message arrives."""
    world, hub, fake = joined.world, joined.hub, joined.fake
    real_url = settings.REDIS_URL
    redis_unreachable(settings)
    await run_sync(grant_two, world)
    settings.REDIS_URL = real_url
    expected = await converged(fake, world, timeout=5 * POLL + 2)
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, expected[1])]
    xid, changes = await run_sync(_last_transaction, world.account_id)
    seq = hub.last_seq
    await run_sync(stream.publish, world.account_id, xid, changes)
    await eventually(lambda: hub.last_seq == seq + 1, what="the late message")
    await settle()
    assert fake.take_frames() == []
    assert fake.refreshes == 1  # only the reload's


async def test_normal_publishes_and_polls_push_each_change_once(joined) -> None:
    world, fake = joined.world, joined.fake
    before = reloads("missed")
    await run_sync(grant_two, world)
    expected = await converged(fake, world)
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, expected[1])]
    await run_sync(rename_one, world, "renamed")
    expected = await converged(fake, world)
    renamed = next(v for v in expected if v["id"] == str(world.one))
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, renamed)]
    await run_sync(revoke_two, world)
    await converged(fake, world)
    assert fake.take_frames() == [(wire.RESOURCE_DELETED, str(world.two))]
    polls = catchup.of_loop().polls
    await eventually(lambda: catchup.of_loop().polls >= polls + 3, what="three more polls")
    assert fake.take_frames() == []
    assert reloads("missed") == before


async def test_the_catch_up_stops_with_the_last_hub(joined) -> None:
    hub = joined.hub
    loop_catchup = catchup.of_loop()
    task = loop_catchup.task
    assert hub in loop_catchup.followers
    assert task is not None and not task.done()
    hub.detach_client(joined.fake)
    await hubs.release(hub)
    assert hub not in loop_catchup.followers
    await eventually(task.done, timeout=3 * POLL + 1, what="the task ends")
