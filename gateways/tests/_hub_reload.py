"""Shared pieces of the account-hub tests with a real Redis and database (test_hub_reload_*.py):
a fake client socket (`FakeClient`, the `ClientSocket` protocol) that does what the client consumer
does on `hub_refresh`, the world and its writes, the database truth, waiting helpers, and the
`joined` fixture (a fake client joined to its account's hub).

Import the fixture under its `*_fixture` name: `from gateways.tests._hub_reload import
joined_fixture  # noqa: F401`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from accounts.models import Actor, ActorGroup
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
from gateways.tests._hub_model import apply_frames
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


@pytest.fixture(name="joined")
async def joined_fixture() -> AsyncIterator[Joined]:
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


def stream_seq(conn: redis.Redis | None = None, *, account_id: Any, incr: bool = False) -> int:
    """The account's stream sequence number (0 before the first), or the next one (`incr`)."""
    conn = conn or sync_redis()
    key = stream.seq_key(account_id)
    reply = conn.incr(key) if incr else conn.get(key)
    assert not isinstance(reply, Awaitable)  # redis-py types sync replies as maybe-awaitable
    return int(reply or 0)
