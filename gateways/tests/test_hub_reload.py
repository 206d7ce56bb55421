"""The account hub (`gateways.hub.hub`) with a real Redis and database, in-process: lost
messages (a sequence gap), a dropped stream connection, oversized transactions, duplicate and
already-loaded messages, bursts, and the release of the last user.

A fake client socket (`FakeClient`, the `ClientSocket` protocol) does what the client consumer
does on `hub_refresh`: asks the hub for its view, pushes the diff from what it was told, and
remembers the new view. After every scenario it must have been told exactly the database truth
(`resources.access.connectable_resources`), frame by frame.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.db import transaction

from accounts.models import Actor, ActorGroup, ActorGroupMembership
from accounts.services import groups as group_svc
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    MembershipFactory,
    subject_for,
)
from firezone import metrics, stream
from gateways import wire
from gateways.hub import hub as hubs
from gateways.hub.model import ClientView
from gateways.models import Client
from gateways.tests.test_hub_model import apply_frames
from resources import access
from resources.conditions import RequestContext
from resources.services import policies as policy_svc
from resources.services import resources as resource_svc
from resources.tests.factories import (
    ClientFactory,
    ConnectionFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
)
from tests.live import run_sync

pytestmark = pytest.mark.django_db(transaction=True)

CTX = RequestContext(
    now=datetime(2025, 10, 8, 12, 0, tzinfo=UTC),
    remote_ip="198.51.100.7",
    remote_ip_location_region="US",
    client_verified=False,
)
VERSION = "1.4.0"
EMPTY = ClientView({})


# --- a client socket as the hub sees it -----------------------------------------------------------


@dataclass(eq=False)
class FakeClient:
    hub: hubs.AccountHub
    hub_actor_id: uuid.UUID
    hub_client_id: str
    told: ClientView = EMPTY
    state: dict[str, Any] = field(default_factory=dict)  # what the device holds
    frames: list[tuple[str, Any]] = field(default_factory=list)
    refreshes: int = 0
    config_changes: int = 0
    client_changes: list[dict[str, Any]] = field(default_factory=list)

    def join(self) -> None:
        """Like `after_join`: take the view and attach in one step, then `init`."""
        _, self.told = self.hub.view_for(self.hub_actor_id, CTX, VERSION)
        self.hub.attach_client(self)
        self.state = dict(self.told.resources)

    async def hub_refresh(self, broken_policies: set[str]) -> None:
        self.refreshes += 1
        _, view = self.hub.view_for(self.hub_actor_id, CTX, VERSION)
        frames = self.hub.diff(self.told, view)
        self.state = apply_frames(self.state, frames)
        self.frames.extend((event, payload) for event, payload, _ in frames)
        self.told = view

    async def hub_config_changed(self) -> None:
        self.config_changes += 1

    async def hub_client_changes(self, changes: list[dict[str, Any]]) -> None:
        self.client_changes.extend(changes)

    def hub_time_bound(self) -> bool:
        return False

    def take_frames(self) -> list[tuple[str, Any]]:
        frames, self.frames = self.frames, []
        return frames


# --- the world --------------------------------------------------------------------------------


@dataclass
class HubWorld:
    account_id: uuid.UUID
    admin_id: uuid.UUID
    actor_id: uuid.UUID
    client_id: uuid.UUID
    group_id: uuid.UUID  # the actor's group: grants `one`
    other_group_id: uuid.UUID  # not the actor's: grants `two`
    one: uuid.UUID
    two: uuid.UUID
    policy_one: uuid.UUID

    @property
    def subject(self) -> Any:
        return subject_for(Actor.objects.get(pk=self.admin_id))


def make_world() -> HubWorld:
    account = AccountFactory()
    admin = ActorFactory(account=account, admin=True)
    site = SiteFactory(account=account, name="S")
    actor = ActorFactory(account=account)
    client = ClientFactory(actor=actor, account=account)
    group = GroupFactory(account=account, name="G")
    other = GroupFactory(account=account, name="Other")
    MembershipFactory(group=group, actor=actor, account=account)
    one = ResourceFactory(account=account, name="one")
    two = ResourceFactory(account=account, name="two")
    for resource in (one, two):
        ConnectionFactory(resource=resource, gateway_group=site, account=account)
    policy = PolicyFactory(account=account, actor_group=group, resource=one)
    PolicyFactory(account=account, actor_group=other, resource=two)
    return HubWorld(
        account.pk, admin.pk, actor.pk, client.pk, group.pk, other.pk, one.pk, two.pk, policy.pk
    )


def truth(world: HubWorld) -> list[dict[str, Any]]:
    client = Client.objects.get(pk=world.client_id)
    return [
        wire.client_resource_view(r)
        for r in access.connectable_resources(client, version=VERSION, request_context=CTX)
    ]


def grant_two(world: HubWorld) -> None:
    """Service write: the actor joins the group that grants `two`."""
    group_svc.membership_add(
        subject=world.subject,
        group=ActorGroup.objects.get(pk=world.other_group_id),
        actor=Actor.objects.get(pk=world.actor_id),
    )


def revoke_two(world: HubWorld) -> None:
    group_svc.membership_remove(
        subject=world.subject,
        group=ActorGroup.objects.get(pk=world.other_group_id),
        actor=Actor.objects.get(pk=world.actor_id),
    )


def revoke_one(world: HubWorld) -> None:
    """Service write: the policy granting `one` is deleted."""
    policy_svc.policy_delete(subject=world.subject, policy=world.policy_one)


def rename_one(world: HubWorld, name: str) -> None:
    resource_svc.resource_update(subject=world.subject, resource=world.one, name=name)


def reloads(reason: str) -> float:
    return metrics.registry.get_sample_value("firezone_hub_reloads_total", {"reason": reason}) or 0


def hubs_gauge() -> float:
    return metrics.registry.get_sample_value("firezone_hubs") or 0


async def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or check}")
        await asyncio.sleep(0.02)


async def converged(fake: FakeClient, world: HubWorld, timeout: float = 5.0) -> list[Any]:
    """Wait until the fake socket was told exactly the database truth (same views, same order);
    returns the truth."""
    expected: list[Any] = []

    async def check() -> bool:
        nonlocal expected
        expected = await run_sync(truth, world)
        return fake.state == {v["id"]: v for v in expected} and (
            list(fake.told.resources.values()) == expected
        )

    try:
        await eventually(check, timeout)
    except AssertionError:
        raise AssertionError(
            f"the socket did not converge:\n told {list(fake.state)}\n truth "
            f"{[v['id'] for v in expected]}"
        ) from None
    return expected


async def settle(seconds: float = 0.3) -> None:
    """Longer than the hub's debounce: whatever was going to be pushed has been."""
    await asyncio.sleep(seconds)


# --- fixtures ---------------------------------------------------------------------------------


@dataclass
class Joined:
    world: HubWorld
    hub: hubs.AccountHub
    fake: FakeClient


@pytest.fixture
async def joined() -> AsyncIterator[Joined]:
    """A hub of a fresh account with one fake client socket attached, told `one`."""
    world = await run_sync(make_world)
    hub = await hubs.acquire(world.account_id)
    fake = FakeClient(hub, world.actor_id, str(world.client_id))
    fake.join()
    assert list(fake.state) == [str(world.one)]
    try:
        yield Joined(world, hub, fake)
    finally:
        hub.detach_client(fake)
        if not hub.closed:
            await hubs.release(hub)
        await stream.subscriber().close()


def sync_redis() -> redis.Redis:
    return redis.Redis.from_url(django_settings.REDIS_URL)


# --- (a) a lost message: the next one shows a gap -------------------------------------------------


async def test_a_gap_reloads_and_converges_with_the_lost_change(joined, monkeypatch) -> None:
    world, hub, fake = joined.world, joined.hub, joined.fake
    before = reloads("gap")
    real_publish = stream.publish

    def lose(account_id: Any, xid: Any, changes: Any) -> int:
        """The message is numbered but never delivered (lost on the way)."""
        return int(sync_redis().incr(stream.seq_key(account_id)))

    monkeypatch.setattr(stream, "publish", lose)
    await run_sync(grant_two, world)
    monkeypatch.setattr(stream, "publish", real_publish)
    await settle()
    assert list(fake.state) == [str(world.one)]  # the hub never heard of it
    assert fake.refreshes == 0

    await run_sync(revoke_one, world)  # published normally: seq = last + 2
    expected = await converged(fake, world)
    assert [v["id"] for v in expected] == [str(world.two)]
    assert reloads("gap") == before + 1
    assert sorted(fake.take_frames(), key=lambda f: f[0]) == [
        (wire.RESOURCE_CREATED_OR_UPDATED, expected[0]),
        (wire.RESOURCE_DELETED, str(world.one)),
    ]
    assert hub.last_seq == int(sync_redis().get(stream.seq_key(world.account_id)))


async def test_a_gap_faked_by_incrementing_the_sequence(joined) -> None:
    """A Redis-side gap (the counter moved without a delivery, e.g. a restart reset and
    re-increment): the next message reloads; nothing is lost or pushed twice."""
    world, fake = joined.world, joined.fake
    before = reloads("gap")
    sync_redis().incr(stream.seq_key(world.account_id))
    await run_sync(grant_two, world)
    expected = await converged(fake, world)
    assert reloads("gap") == before + 1
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, expected[1])]
    await settle()
    assert fake.take_frames() == []


async def test_a_sequence_reset_while_connected_reloads(joined) -> None:
    """The account's counter starts again at 1 while the subscriber stays connected (its key
    was deleted or evicted, FLUSHDB): the next message is numbered 1, below what the hub last
    saw. `firezone.stream` promises a reload for anything but last + 1, a counter reset
    included; the change must not be dropped as a duplicate."""
    world, hub, fake = joined.world, joined.hub, joined.fake
    await run_sync(grant_two, world)
    await run_sync(rename_one, world, "renamed")
    await converged(fake, world)
    assert hub.last_seq >= 2
    sync_redis().delete(stream.seq_key(world.account_id))
    await run_sync(revoke_one, world)  # published as number 1
    await converged(fake, world)


# --- (b) the stream connection drops while a write happens ----------------------------------------


def kill_pubsub_connection(conn: redis.Redis, subscriber: stream.StreamSubscriber) -> None:
    """Kill exactly the subscriber's pub/sub connection (found by its local address)."""
    writer = subscriber._pubsub.connection._writer
    host, port = writer.get_extra_info("sockname")[:2]
    (found,) = [c for c in conn.client_list(_type="pubsub") if c["addr"] == f"{host}:{port}"]
    conn.execute_command("CLIENT", "KILL", "ID", found["id"])


def spy_on_deliveries(subscriber: stream.StreamSubscriber, account_id: Any) -> list[Any]:
    """Record what the subscriber hands the hub (sequence numbers, None for "reconnected")."""
    channel = stream.channel_name(account_id)
    handler = subscriber.handlers[channel]
    delivered: list[Any] = []

    async def spy(message: stream.StreamMessage | None) -> None:
        delivered.append(None if message is None else message.seq)
        await handler(message)

    subscriber.handlers[channel] = spy
    return delivered


async def test_b_reconnect_reloads_and_converges(joined, monkeypatch) -> None:
    """The subscriber's pub/sub connection is killed and a change is committed while it is
    down: the message is lost for this process. Once reconnected the hub must reload (reason
    "reconnect") and the socket converge, without waiting for some later write."""
    world, hub, fake = joined.world, joined.hub, joined.fake
    before = reloads("reconnect")
    # The reconnect waits long enough for the write below to be committed and published while
    # the subscriber is away.
    monkeypatch.setattr(stream, "_RECONNECT_DELAYS", (0.5,))
    conn = sync_redis()
    subscriber = stream.subscriber()
    delivered = spy_on_deliveries(subscriber, world.account_id)
    kill_pubsub_connection(conn, subscriber)
    await run_sync(grant_two, world)  # committed while the subscriber is (re)connecting
    published = int(conn.get(stream.seq_key(world.account_id)))

    await converged(fake, world, timeout=8)
    assert reloads("reconnect") == before + 1
    assert None in delivered  # the subscriber told the hub it had been away
    assert published not in delivered, "the write was not lost: the test raced"
    assert hub.last_seq == int(conn.get(stream.seq_key(world.account_id)))


# --- (c) an oversized transaction is announced as a reload marker ---------------------------------


async def test_c_oversized_transaction_reloads(joined, monkeypatch) -> None:
    world, fake = joined.world, joined.fake
    before = reloads("oversized")
    monkeypatch.setattr(stream, "MAX_MESSAGE_BYTES", 16)
    await run_sync(grant_two, world)
    expected = await converged(fake, world)
    assert reloads("oversized") == before + 1
    assert fake.take_frames() == [(wire.RESOURCE_CREATED_OR_UPDATED, expected[1])]
    monkeypatch.setattr(stream, "MAX_MESSAGE_BYTES", 4 * 1024 * 1024)
    await run_sync(revoke_one, world)  # normal messages again, applied incrementally
    await converged(fake, world)
    assert reloads("oversized") == before + 1
    assert fake.take_frames() == [(wire.RESOURCE_DELETED, str(world.one))]


# --- a batch that cannot be applied, a message that cannot be read --------------------------------


def publish_raw(account_id: Any, changes: list[dict[str, Any]]) -> int:
    """A message as `firezone.changes` would publish it, with hand-made change rows."""
    return stream.publish(account_id, None, changes)


async def test_a_batch_that_fails_to_apply_reloads(joined) -> None:
    world, fake = joined.world, joined.fake
    before = reloads("error")
    await run_sync(grant_two, world)
    await converged(fake, world)
    # Not a number where the change number belongs: apply_all raises.
    bad = {"lsn": "x", "table": "resources", "op": "update", "old": {}, "new": {"id": "y"}}
    await asyncio.to_thread(publish_raw, world.account_id, [bad])
    await eventually(lambda: reloads("error") == before + 1, what="an error reload")
    await run_sync(revoke_one, world)  # and the stream goes on
    await converged(fake, world)


async def test_an_undecodable_message_reloads(joined) -> None:
    world, hub, fake = joined.world, joined.hub, joined.fake
    before = reloads("reconnect")
    seq = int(sync_redis().incr(stream.seq_key(world.account_id)))
    sync_redis().publish(stream.channel_name(world.account_id), f"{seq}|not json")
    await eventually(lambda: reloads("reconnect") == before + 1, what="a reload")
    await run_sync(grant_two, world)
    await converged(fake, world)
    assert hub.last_seq == seq + 1


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

    real_load = model_module.AccessModel.load.__func__
    written = []

    def load_after_a_write(cls: Any, account_id: Any) -> Any:
        if not written:
            written.append(True)
            grant_two(world)  # commits (and publishes) between the seq read and the snapshot
        return real_load(cls, account_id)

    monkeypatch.setattr(model_module.AccessModel, "load", classmethod(load_after_a_write))
    applied: list[Any] = []
    await hub.reload("test")
    assert written
    assert hub.model is not None
    real_apply_all = hub.model.apply_all

    def spy(changes: Any) -> Any:
        applied.append(changes)
        return real_apply_all(changes)

    hub.model.apply_all = spy  # type: ignore[method-assign]
    # The write's message reaches the hub (buffered during the load or just after it).
    await eventually(
        lambda: hub.last_seq == int(sync_redis().get(stream.seq_key(world.account_id))),
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
    seq_before = int(sync_redis().get(stream.seq_key(world.account_id)) or 0)
    await run_sync(burst, world, groups, others)
    assert int(sync_redis().get(stream.seq_key(world.account_id))) == seq_before + 1
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
