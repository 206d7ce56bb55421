"""The account hub (`gateways.hub.hub`) with a real Redis and database, in-process: metrics,
duplicate, late and already-loaded messages, bursts, a message racing the first load, the release
of the last user, and one stream message per transaction.

After every scenario the fake client socket must have been told exactly the database truth
(`resources.access.connectable_resources`), frame by frame. Shared pieces:
gateways/tests/_hub_reload.py.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from accounts.models import Actor, ActorGroup, ActorGroupMembership
from accounts.services import groups as group_svc
from accounts.tests.factories import (
    ActorFactory,
    GroupFactory,
)
from firezone import metrics, stream
from gateways import wire
from gateways.hub import hub as hubs
from gateways.tests._hub_reload import (
    CTX,
    VERSION,
    HubWorld,
    converged,
    eventually,
    grant_two,
    hubs_gauge,
    joined_fixture,  # noqa: F401
    make_world,
    reloads,
    rename_one,
    revoke_one,
    revoke_two,
    settle,
    stream_seq,
    sync_redis,
)
from tests.live import run_sync

pytestmark = pytest.mark.django_db(transaction=True)

# --- metrics ------------------------------------------------------------------------------------


def apply_observations() -> float:
    return metrics.registry.get_sample_value("firezone_hub_change_apply_seconds_count") or 0


async def test_one_batch_is_one_change_apply_observation(joined) -> None:
    """`firezone_hub_change_apply_seconds`: "time for an access hub to apply one batch of
    changes and push to its sockets" — one observation per batch."""
    world, fake = joined.world, joined.fake
    before = apply_observations()
    await run_sync(grant_two, world)  # one transaction, one message, one affected socket
    await converged(fake, world)
    await settle()
    assert fake.refreshes == 1
    assert apply_observations() - before == 1


# --- (d) duplicates, late messages, messages already in the load ----------------------------------


class Recorder:
    """A second subscriber of the account's stream (its own Redis connection) that keeps every
    message, to replay real messages to the hub."""

    def __init__(self) -> None:
        self.subscriber = stream.StreamSubscriber(url=django_settings.REDIS_URL)
        self.messages: list[stream.StreamMessage | None] = []

    async def handler(self, message: stream.StreamMessage | None) -> None:
        self.messages.append(message)

    async def start(self, account_id: Any) -> Recorder:
        await self.subscriber.subscribe(str(account_id), self.handler)
        return self

    async def next(self, count: int = 1) -> list[stream.StreamMessage]:
        await eventually(lambda: len(self.messages) >= count, what="a recorded message")
        return [m for m in self.messages if m is not None]


async def test_d_duplicate_and_late_messages_are_ignored(joined) -> None:
    world, hub, fake = joined.world, joined.hub, joined.fake
    recorder = await Recorder().start(world.account_id)
    try:
        await run_sync(grant_two, world)
        (granted,) = await recorder.next(1)
        await converged(fake, world)
        await run_sync(revoke_two, world)
        await recorder.next(2)
        await converged(fake, world)
        await settle()
        fake.take_frames()
        refreshes = fake.refreshes
        last_seq = hub.last_seq
        assert granted.seq < last_seq

        # The grant again: a number already seen (a duplicate, or a counter that Redis lost and
        # restarted) is never applied; the hub reloads once instead (issue 12: "a duplicate
        # triggers one reload, never a wrong view"), and nothing changed, so nothing is pushed.
        before = reloads("duplicate")
        await hub.on_message(granted)
        await settle()
        assert reloads("duplicate") == before + 1
        assert hub.last_seq == last_seq
        assert fake.take_frames() == []
        assert fake.refreshes >= refreshes
        await converged(fake, world)
        assert [v["id"] for v in fake.told.resources.values()] == [str(world.one)]
        assert fake.take_frames() == []
    finally:
        await recorder.subscriber.close()


async def test_d_message_already_in_the_loaded_snapshot_is_skipped(joined, monkeypatch) -> None:
    """A transaction committed after the reload read the stream's number but before it took its
    database snapshot: its message arrives with the next number, but the model already has it.
    It must be skipped (not applied twice)."""
    world, hub, fake = joined.world, joined.hub, joined.fake
    from gateways.hub import model as model_module

    real_load = model_module.AccessModel.load
    written: list[bool] = []

    def load_after_a_write(cls: Any, account_id: Any) -> Any:
        if not written:
            written.append(True)
            grant_two(world)  # commits (and publishes) between the seq read and the snapshot
        return real_load(account_id)

    monkeypatch.setattr(model_module.AccessModel, "load", classmethod(load_after_a_write))
    applied: list[Any] = []
    await hub.reload("test")
    assert written
    assert hub.model is not None
    real_apply_all = hub.model.apply_all

    def spy(changes: Any) -> Any:
        applied.append(changes)
        return real_apply_all(changes)

    hub.model.apply_all = spy
    # The write's message reaches the hub (buffered during the load or just after it).
    await eventually(
        lambda: hub.last_seq == stream_seq(account_id=world.account_id),
        what="the hub took the message's number",
    )
    assert applied == []  # skipped: its transaction is in the snapshot
    assert hub.model.snapshot.contains(await run_sync(_last_xid, world.account_id)), (
        "the write is in the load's snapshot"
    )
    await converged(fake, world)
    assert [v["id"] for v in fake.told.resources.values()] == [str(world.one), str(world.two)]
    await run_sync(revoke_one, world)  # the next one applies normally
    await converged(fake, world)
    assert len(applied) == 1


def _last_xid(account_id: Any) -> int:
    from firezone.models import ChangeLog

    return (
        ChangeLog.objects.filter(account_id=account_id)
        .order_by("-lsn")
        .values_list("xid", flat=True)[0]
    )


# --- (e) bursts coalesce ----------------------------------------------------------------------


def burst(world: HubWorld, groups: list[uuid.UUID], others: list[uuid.UUID]) -> None:
    """ONE transaction of 200 membership changes: the socket's actor joins 100 groups (one of
    them grants `two`) and 100 other actors join the actor's group."""
    subject = world.subject
    actor = Actor.objects.get(pk=world.actor_id)
    group = ActorGroup.objects.get(pk=world.group_id)
    with transaction.atomic():
        for group_id in groups:
            group_svc.membership_add(
                subject=subject, group=ActorGroup.objects.get(pk=group_id), actor=actor
            )
        for actor_id in others:
            group_svc.membership_add(
                subject=subject, group=group, actor=Actor.objects.get(pk=actor_id)
            )


def burst_world(world: HubWorld) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    account_id = world.account_id
    groups = [GroupFactory(account_id=account_id).pk for _ in range(99)] + [world.other_group_id]
    others = [ActorFactory(account_id=account_id).pk for _ in range(100)]
    return groups, others


async def test_e_a_burst_of_200_membership_changes_is_one_refresh(joined) -> None:
    world, fake = joined.world, joined.fake
    groups, others = await run_sync(burst_world, world)
    seq_before = stream_seq(account_id=world.account_id)
    await run_sync(burst, world, groups, others)
    assert stream_seq(account_id=world.account_id) == seq_before + 1
    expected = await converged(fake, world)
    await settle()
    assert fake.refreshes == 1
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, expected[1])]
    assert (
        await run_sync(
            lambda: ActorGroupMembership.objects.filter(account_id=world.account_id).count()
        )
        == 1 + 100 + 100
    )


async def test_e_transactions_within_the_debounce_window_coalesce(joined, settings) -> None:
    world, fake = joined.world, joined.fake
    settings.HUB_DEBOUNCE_SECONDS = 0.5

    def writes() -> None:
        for name in ("one-a", "one-b", "one-c"):
            rename_one(world, name)
        grant_two(world)

    await run_sync(writes)
    expected = await converged(fake, world)
    await settle(0.6)
    assert fake.refreshes == 1
    assert sorted(fake.take_frames(), key=lambda f: f[1]["id"]) == sorted(
        [(wire.RESOURCE_CREATED_OR_UPDATED, v) for v in expected], key=lambda f: f[1]["id"]
    )
    assert expected[0]["name"] == "one-c"


# --- start: a message racing the first load ----------------------------------------------------


async def test_start_with_a_message_delivered_right_after_the_subscription(monkeypatch) -> None:
    """A busy account: a message of its stream reaches the hub after Redis confirmed the
    subscription but before `start()` resumed to begin its first load (the reader task runs
    meanwhile; the hub's last number is still 0, so it looks like a gap). `acquire` must still
    return a loaded hub, a second user waiting for it must get it too, and the change is in
    the model exactly once."""
    world = await run_sync(make_world)
    await run_sync(rename_one, world, "before")  # the account's stream is past 0
    subscriber = stream.subscriber()
    real_subscribe = subscriber.subscribe

    async def subscribe(account_id: Any, handler: Any) -> None:
        delivered = asyncio.Event()

        async def delivering(message: Any) -> None:
            delivered.set()
            await handler(message)

        await real_subscribe(account_id, delivering)
        # The caller is descheduled for a moment: a write is committed and delivered.
        await run_sync(rename_one, world, "renamed")
        await asyncio.wait_for(delivered.wait(), 5)

    monkeypatch.setattr(subscriber, "subscribe", subscribe)
    first = asyncio.ensure_future(hubs.acquire(world.account_id))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(hubs.acquire(world.account_id))
    results = await asyncio.gather(first, second, return_exceptions=True)
    hub = next((r for r in results if isinstance(r, hubs.AccountHub)), None)
    try:
        assert hub is not None, results
        assert hub.model is not None, "acquire() returned a hub that is not loaded"
        assert results[1] is hub, f"the second user got {results[1]!r}"
        await eventually(lambda: not hub._loading and hub._buffer is None)
        _, view = hub.view_for(world.actor_id, CTX, VERSION)
        assert [v["name"] for v in view.resources.values()] == ["renamed"]
        assert hub.last_seq == 2
    finally:
        for result in results:
            if isinstance(result, hubs.AccountHub):
                await hubs.release(result)
        await subscriber.close()


# --- (f) the last release frees the hub -------------------------------------------------------


async def test_f_release_of_the_last_user_frees_the_hub(joined) -> None:
    world, hub, fake = joined.world, joined.hub, joined.fake
    key = str(world.account_id)
    gauge = hubs_gauge()
    again = await hubs.acquire(world.account_id)  # a second user of the same hub
    assert again is hub and hub.refs == 2 and hubs_gauge() == gauge
    await hubs.release(again)
    assert hubs.loaded()[key] is hub and not hub.closed
    hub.detach_client(fake)
    await hubs.release(hub)
    assert key not in hubs.loaded()
    assert hub.closed
    assert hubs_gauge() == gauge - 1
    # A new user loads a new hub.
    fresh = await hubs.acquire(world.account_id)
    try:
        assert fresh is not hub and hubs_gauge() == gauge
    finally:
        await hubs.release(fresh)
    assert hubs_gauge() == gauge - 1


async def test_f_release_of_the_last_user_unsubscribes_the_account_stream(joined) -> None:
    """Freed means freed: the process stops following the account's channel (Redis
    subscription) and the stream subscriber drops the closed hub (and with it the account's
    whole access model)."""
    world, hub, fake = joined.world, joined.hub, joined.fake
    channel = stream.channel_name(world.account_id)
    subscriber = stream.subscriber()
    assert channel in subscriber.handlers
    hub.detach_client(fake)
    await hubs.release(hub)
    assert hub.closed
    await eventually(
        lambda: sync_redis().pubsub_numsub(channel) == [(channel.encode(), 0)],
        timeout=2,
        what="Redis no longer has a subscriber of the account's channel",
    )
    assert channel not in subscriber.handlers


# --- what the hub is sent: one message per transaction ----------------------------------------


def test_a_write_made_by_a_commit_hook_is_a_message_of_its_own(monkeypatch) -> None:
    """A hook run after a commit (e.g. a post-provision hook) may write through a service: that
    is another transaction. The stream must still carry one message per transaction, each
    labelled with its own transaction id (the hub skips a message by that id when its snapshot
    already has the transaction), and the first transaction's changes stay together."""
    world = make_world()
    published: list[tuple[Any, list[dict[str, Any]]]] = []
    real_publish = stream.publish

    def spy(account_id: Any, xid: Any, changes: list[dict[str, Any]]) -> int:
        published.append((xid, changes))
        return real_publish(account_id, xid, changes)

    monkeypatch.setattr(stream, "publish", spy)
    with transaction.atomic():
        rename_one(world, "first")  # the outer transaction's first change
        transaction.on_commit(lambda: grant_two(world))  # a write of its own, after commit
        revoke_one(world)  # ... and its later changes
    assert published, "nothing published"
    for xid, changes in published:
        assert {c["xid"] for c in changes} == {xid}, (
            f"message labelled {xid} carries changes of transactions "
            f"{sorted({c['xid'] for c in changes})}: {[(c['table'], c['op']) for c in changes]}"
        )
    assert len(published) == 2, [[(c["table"], c["op"]) for c in m] for _, m in published]


async def test_row_watermarks_are_compacted_by_a_reload(joined, monkeypatch) -> None:
    """The per-row change numbers only matter for transactions published out of order; past
    `ROW_WATERMARKS_LIMIT` rows the hub reloads (which starts without them) and stays right."""
    from gateways.hub import hub as hub_module

    world, hub, fake = joined.world, joined.hub, joined.fake
    monkeypatch.setattr(hub_module, "ROW_WATERMARKS_LIMIT", 0)
    before = reloads("compact")
    await run_sync(grant_two, world)
    await converged(fake, world)
    await settle()
    assert reloads("compact") >= before + 1
    assert hub.model is not None and len(hub.model.row_lsn) == 0
