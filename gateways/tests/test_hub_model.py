"""The access hub's in-memory model against the database, after random service writes.

A Hypothesis state machine performs random writes through the services (resources, connections,
sites, policies, groups, memberships, actors, and bursts of many membership changes in one
transaction) in one account. Every committed change reaches the model the way it reaches a hub:
published by `firezone.changes` after commit on the device stream, received by a real
`firezone.stream.StreamSubscriber` (on an event loop of its own thread), numbered by the stream's
sequence, skipped when the load's snapshot already contains its transaction, and applied with
`AccessModel.apply_all`.

After every step, for every actor with a client, several request contexts and two client
versions, the model's client view must equal what `resources.access.connectable_resources`
computes from a fresh database read (same views, same order), and equal a fresh
`AccessModel.load`; in-memory authorisation must agree with the database one; and the diff
frames a socket would be pushed (`gateways.hub.hub.diff_frames`), applied to what it was told
before, must add up to exactly the new view.

Shared pieces (the receiving side, the world, the truth): gateways/tests/_hub_model.py.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import uuid
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.models import Model
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from accounts.models import Actor, ActorGroup
from accounts.services import actors as actor_svc
from accounts.services import groups as group_svc
from accounts.tests.factories import AccountFactory, ActorFactory, GroupFactory, subject_for
from firezone import stream
from firezone.errors import ValidationFailed
from gateways.hub.hub import diff_frames
from gateways.hub.model import AccessModel, ClientView
from gateways.models import Client, Site
from gateways.services import sites as site_svc
from gateways.tests._hub_model import (
    ADDRESSES,
    CLIENT_ACTORS,
    CONDITIONS,
    CONTEXTS,
    EMPTY,
    OTHER_ACTORS,
    VERSIONS,
    Follower,
    StreamFeed,
    addresses,
    apply_frames,
    conditions_st,
    filters_st,
    model_state,
    names,
    published_seq,
    truth_by_context,
)
from resources import access
from resources.conditions import RequestContext
from resources.models import Policy, Resource
from resources.services import policies as policy_svc
from resources.services import resources as resource_svc
from resources.tests.factories import ClientFactory

# --- the state machine ----------------------------------------------------------------------------


STATS: dict[str, int] = {}


def _count(name: str, amount: int = 1) -> None:
    STATS[name] = STATS.get(name, 0) + amount


class HubModelMachine(RuleBasedStateMachine):
    feed: StreamFeed  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.account = AccountFactory()
        admin = ActorFactory(account=self.account, admin=True)
        self.subject = subject_for(admin)
        self.actors: list[uuid.UUID] = []
        self.clients: list[tuple[uuid.UUID, uuid.UUID]] = []
        for index in range(CLIENT_ACTORS + OTHER_ACTORS):
            actor = ActorFactory(account=self.account)
            self.actors.append(actor.pk)
            if index < CLIENT_ACTORS:
                client = ClientFactory(actor=actor, account=self.account)
                self.clients.append((actor.pk, client.pk))
        self.sites = [
            site_svc.site_create(subject=self.subject, name=f"site-{n}").pk for n in ("b", "A")
        ]
        self.groups = [GroupFactory(account=self.account, name=f"group-{n}").pk for n in range(3)]
        # A starting point worth changing (in the load's snapshot): each group grants a
        # resource (one under a region condition, one for verified clients only), the client
        # actors are members of some groups, and the resources' names sort differently
        # case-sensitively and case-insensitively.
        self.resources = []
        for index, ((kind, address), name) in enumerate(
            zip(ADDRESSES[:4], ["Beta", "alpha", "a b", "_x"], strict=True)
        ):
            self.resources.append(
                resource_svc.resource_create(
                    subject=self.subject,
                    name=name,
                    type=kind,
                    address=address,
                    connections=self.sites[: 1 + index % 2],
                ).pk
            )
        self.policies = [
            policy_svc.policy_create(
                subject=self.subject,
                actor_group_id=group,
                resource_id=resource,
                conditions=conditions,
            ).pk
            for group, resource, conditions in [
                (self.groups[0], self.resources[0], []),
                (self.groups[0], self.resources[1], []),
                (self.groups[1], self.resources[2], [CONDITIONS[0]]),
                (self.groups[2], self.resources[3], [CONDITIONS[2]]),
                (self.groups[2], self.resources[0], [CONDITIONS[1]]),
            ]
        ]
        for index, actor_id in enumerate(self.actors):
            for group in self.groups[index % 3 : index % 3 + 2]:
                group_svc.membership_add(
                    subject=self.subject,
                    group=ActorGroup.objects.get(pk=group),
                    actor=Actor.objects.get(pk=actor_id),
                )
        self.counter = 0
        self.follower = Follower(str(self.account.pk), self.feed)
        self.follower.start()
        self.told: dict[tuple[Any, ...], ClientView] = {}
        self.client_state: dict[tuple[Any, ...], dict[str, Any]] = {}

    def teardown(self) -> None:
        self.feed.unfollow(self.account.pk)
        _count("messages applied", self.follower.applied)
        _count("messages skipped (in snapshot)", self.follower.skipped_in_snapshot)

    # ---------------------------------------------------------------- helpers

    def _alive(self, ids: list[Any], model: type[Model]) -> list[Any]:
        existing = set(model._default_manager.filter(pk__in=ids).values_list("pk", flat=True))
        ids[:] = [i for i in ids if i in existing]
        return ids

    def _pick(self, data: st.DataObject, ids: list[Any], model: type) -> Any:
        alive = self._alive(ids, model)
        return data.draw(st.sampled_from(alive)) if alive else None

    def _pick_sites(self, data: st.DataObject) -> list[Any]:
        alive = self._alive(self.sites, Site)
        if not alive:
            return []
        return data.draw(st.lists(st.sampled_from(alive), min_size=1, max_size=3, unique=True))

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    # ---------------------------------------------------------------- resources

    @rule(name=names, address=addresses, filters=filters_st, data=st.data())
    def create_resource(self, name: str, address: tuple[str, str], filters: Any, data: Any) -> None:
        sites = self._pick_sites(data)
        if not sites:
            return
        resource = resource_svc.resource_create(
            subject=self.subject,
            name=name,
            type=address[0],
            address=address[1],
            filters=filters,
            connections=sites,
        )
        self.resources.append(resource.pk)

    @rule(
        data=st.data(),
        name=st.none() | names,
        address=st.none() | addresses,
        filters=st.none() | filters_st,
    )
    def update_resource(self, data: Any, name: Any, address: Any, filters: Any) -> None:
        resource = self._pick(data, self.resources, Resource)
        if resource is None:
            return
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = name
        if address is not None:
            fields["type"], fields["address"] = address
        if filters is not None:
            fields["filters"] = filters
        resource_svc.resource_update(subject=self.subject, resource=resource, **fields)

    @rule(data=st.data())
    def connect_resource(self, data: Any) -> None:
        """Replace the resource's sites (adds and removes connections)."""
        resource = self._pick(data, self.resources, Resource)
        sites = self._pick_sites(data)
        if resource is None or not sites:
            return
        resource_svc.resource_update(subject=self.subject, resource=resource, connections=sites)

    @rule(data=st.data())
    def delete_resource(self, data: Any) -> None:
        resource = self._pick(data, self.resources, Resource)
        if resource is not None:
            resource_svc.resource_delete(subject=self.subject, resource=resource)

    # ---------------------------------------------------------------- sites

    @rule(name=names)
    def create_site(self, name: str) -> None:
        with contextlib.suppress(ValidationFailed):  # the name is taken
            self.sites.append(site_svc.site_create(subject=self.subject, name=name).pk)

    @rule(data=st.data(), name=names)
    def rename_site(self, data: Any, name: str) -> None:
        site = self._pick(data, self.sites, Site)
        if site is None:
            return
        with contextlib.suppress(ValidationFailed):  # the name is taken
            site_svc.site_update(subject=self.subject, site=site, name=name)

    @rule(data=st.data())
    def delete_site(self, data: Any) -> None:
        site = self._pick(data, self.sites, Site)
        if site is not None:
            site_svc.site_delete(subject=self.subject, site=site)

    # ---------------------------------------------------------------- policies

    @rule(data=st.data(), conditions=conditions_st)
    def create_policy(self, data: Any, conditions: list[dict[str, Any]]) -> None:
        group = self._pick(data, self.groups, ActorGroup)
        resource = self._pick(data, self.resources, Resource)
        if group is None or resource is None:
            return
        try:
            policy = policy_svc.policy_create(
                subject=self.subject,
                actor_group_id=group,
                resource_id=resource,
                conditions=conditions,
            )
        except ValidationFailed:  # a policy of this group and resource exists
            return
        self.policies.append(policy.pk)

    @rule(
        data=st.data(),
        what=st.sampled_from(["conditions", "resource_id", "actor_group_id"]),
        conditions=conditions_st,
    )
    def update_policy(self, data: Any, what: str, conditions: list[dict[str, Any]]) -> None:
        policy = self._pick(data, self.policies, Policy)
        if policy is None:
            return
        if what == "conditions":
            value: Any = conditions
        elif what == "resource_id":
            value = self._pick(data, self.resources, Resource)
        else:
            value = self._pick(data, self.groups, ActorGroup)
        if value is None:
            return
        with contextlib.suppress(ValidationFailed):  # would duplicate another policy
            policy_svc.policy_update(subject=self.subject, policy=policy, **{what: value})

    @rule(data=st.data(), enable=st.booleans())
    def toggle_policy(self, data: Any, enable: bool) -> None:
        policy = self._pick(data, self.policies, Policy)
        if policy is None:
            return
        service = policy_svc.policy_enable if enable else policy_svc.policy_disable
        service(subject=self.subject, policy=policy)

    @rule(data=st.data())
    def delete_policy(self, data: Any) -> None:
        policy = self._pick(data, self.policies, Policy)
        if policy is not None:
            policy_svc.policy_delete(subject=self.subject, policy=policy)

    # ---------------------------------------------------------------- groups and memberships

    @rule(data=st.data())
    def create_group(self, data: Any) -> None:
        alive = self._alive(self.actors, Actor)
        members = data.draw(st.lists(st.sampled_from(alive), unique=True)) if alive else []
        group = group_svc.group_create(
            subject=self.subject, name=self._name("static"), members=members
        )
        self.groups.append(group.pk)

    @rule(data=st.data())
    def delete_group(self, data: Any) -> None:
        group = self._pick(data, self.groups, ActorGroup)
        if group is not None:
            group_svc.group_delete(subject=self.subject, group=group)

    @rule(data=st.data(), add=st.booleans())
    def change_membership(self, data: Any, add: bool) -> None:
        group = self._pick(data, self.groups, ActorGroup)
        actor = self._pick(data, self.actors, Actor)
        if group is None or actor is None:
            return
        service = group_svc.membership_add if add else group_svc.membership_remove
        service(subject=self.subject, group=group, actor=actor)

    @rule(operations=st.integers(30, 200), rng=st.randoms(use_true_random=False))
    def burst(self, operations: int, rng: random.Random) -> None:
        """Many membership changes (some pairs several times, some in a savepoint that rolls
        back) in ONE transaction: one stream message."""
        groups = list(self._alive(self.groups, ActorGroup))
        actors = list(self._alive(self.actors, Actor))
        if not groups or not actors:
            return
        with transaction.atomic():
            for _ in range(operations):
                group = ActorGroup.objects.get(pk=rng.choice(groups))
                actor = Actor.objects.get(pk=rng.choice(actors))
                service = (
                    group_svc.membership_add if rng.random() < 0.5 else group_svc.membership_remove
                )
                if rng.random() < 0.1:
                    try:
                        with transaction.atomic():
                            service(subject=self.subject, group=group, actor=actor)
                            raise _RolledBack
                    except _RolledBack:
                        pass
                else:
                    service(subject=self.subject, group=group, actor=actor)

    # ---------------------------------------------------------------- actors

    @rule(data=st.data())
    def disable_actor(self, data: Any) -> None:
        actor = self._pick(data, self.actors, Actor)
        if actor is not None:
            actor_svc.actor_disable(subject=self.subject, actor=actor)

    @rule(data=st.data())
    def delete_actor(self, data: Any) -> None:
        actor = self._pick(data, self.actors, Actor)
        if actor is not None:
            actor_svc.actor_delete(subject=self.subject, actor=actor)

    # ---------------------------------------------------------------- races

    def _write(self, kind: str, target: Any, value: Any) -> None:
        if kind == "rename":
            resource_svc.resource_update(subject=self.subject, resource=target, name=value)
        elif kind == "membership":
            group, actor = target
            service = group_svc.membership_add if value else group_svc.membership_remove
            service(
                subject=self.subject,
                group=ActorGroup.objects.get(pk=group),
                actor=Actor.objects.get(pk=actor),
            )
        else:  # policy
            toggle = policy_svc.policy_enable if value else policy_svc.policy_disable
            toggle(subject=self.subject, policy=target)

    def _race_target(self, data: Any, kind: str) -> Any:
        if kind == "rename":
            return self._pick(data, self.resources, Resource)
        if kind == "membership":
            group = self._pick(data, self.groups, ActorGroup)
            actor = self._pick(data, self.actors, Actor)
            return None if group is None or actor is None else (group, actor)
        return self._pick(data, self.policies, Policy)

    @rule(
        data=st.data(),
        kind=st.sampled_from(["rename", "membership", "policy"]),
        values=st.tuples(st.booleans(), st.booleans()),
        names=st.tuples(names, names),
        reload_between=st.booleans(),
    )
    def publishes_out_of_order(
        self, data: Any, kind: str, values: Any, names: Any, reload_between: bool
    ) -> None:
        """Two transactions on the same row, committed one after the other, published in the
        opposite order (the first one's thread is slow between its commit and its publish):
        the older image arrives last and must lose. With `reload_between`, the hub reloads
        before the late message arrives: the late message is numbered after the reload's
        baseline, but its transaction is in the snapshot and must be skipped (applied, its
        older image would win over the loaded one)."""
        target = self._race_target(data, kind)
        if target is None:
            return
        first, second = names if kind == "rename" else values
        held, release = threading.Event(), threading.Event()
        real_publish = stream.publish
        slow: list[threading.Thread] = []

        def publish(account_id: Any, xid: Any, changes: Any) -> int:
            if slow and threading.current_thread() is slow[0]:
                held.set()
                release.wait(10)
            elif held.is_set() and not release.is_set():
                _count("publishes overtaking an earlier transaction's")
            return real_publish(account_id, xid, changes)

        def run_first() -> None:
            try:
                self._write(kind, target, first)
            finally:
                held.set()
                connections.close_all()

        stream.publish = publish  # the sender side only: delivery stays real
        try:
            slow.append(threading.Thread(target=run_first))
            slow[0].start()
            assert held.wait(10)  # the first transaction committed, its publish is held
            self._write(kind, target, second)
            if reload_between:
                self.follower.sync()
                self.follower.last_seq = published_seq(self.account.pk)
                self.follower.model = AccessModel.load(self.account.pk)
        finally:
            release.set()
            slow[0].join(10)
            stream.publish = real_publish

    @rule(data=st.data(), kind=st.sampled_from(["rename", "membership", "policy"]))
    def reload_racing_a_write(self, data: Any, kind: str) -> None:
        """A hub reload (stream number read, then the database snapshot) while a write commits
        in between: the write's message comes next but is already in the model."""
        follower = self.follower
        follower.sync()
        target = self._race_target(data, kind)
        value = data.draw(names if kind == "rename" else st.booleans())
        follower.last_seq = published_seq(self.account.pk)
        if target is not None:
            self._write(kind, target, value)
        follower.model = AccessModel.load(self.account.pk)

    # ---------------------------------------------------------------- the invariants

    @invariant()
    def model_is_the_database(self) -> None:
        follower = self.follower
        follower.sync()
        # The real stream never loses anything here: no reload was ever needed.
        assert follower.reloads == 0
        model = follower.model
        assert model is not None
        fresh = AccessModel.load(self.account.pk)
        assert model_state(model) == model_state(fresh)

        for actor_id, client_id in self.clients:
            client = Client.objects.filter(pk=client_id).first()
            if client is None:  # the actor was deleted
                assert not Actor.objects.filter(pk=actor_id).exists()
                continue
            grantset, fresh_grantset = model.grantset(actor_id), fresh.grantset(actor_id)
            loaded = access.client_access_load(client)
            truths = truth_by_context(client)
            for ctx_name, ctx in CONTEXTS.items():
                for version in VERSIONS:
                    truth = truths[ctx_name, version]
                    _count("views")
                    _count("non-empty views", bool(truth))
                    _count("resources in views", len(truth))
                    view = model.client_view(grantset, ctx, version)
                    assert list(view.resources.values()) == truth, (ctx_name, version)
                    assert list(view.resources) == [v["id"] for v in truth]
                    fresh_view = fresh.client_view(fresh_grantset, ctx, version)
                    assert list(fresh_view.resources.values()) == truth
                    self._check_authorize(model, loaded, actor_id, ctx, view)
                    self._check_diff((actor_id, ctx_name, version), view)

    def _check_authorize(
        self,
        model: AccessModel,
        loaded: access.ClientAccess,
        actor_id: Any,
        ctx: RequestContext,
        view: ClientView,
    ) -> None:
        """In-memory authorisation (§5.4 step 1) agrees with the database's, for every resource
        of the account."""
        for resource_id in list(model.resources)[:6]:
            expected = loaded.authorize(
                str(resource_id), ctx=ctx, token_expires_at=None, connectable_ids=view.resources
            )
            got = model.authorize(
                actor_id,
                str(resource_id),
                ctx=ctx,
                token_expires_at=None,
                connectable_ids=view.resources,
            )
            assert got == expected

    def _check_diff(self, key: tuple[Any, ...], view: ClientView) -> None:
        told = self.told.get(key, EMPTY)
        frames = diff_frames(told, view)
        _count("frames", len(frames))
        state = apply_frames(self.client_state.get(key, {}), frames)
        assert state == view.resources
        if told.resources == view.resources:
            assert frames == [], "frames pushed although nothing changed"
        self.told[key], self.client_state[key] = view, state


class _RolledBack(Exception):
    pass


@pytest.fixture
def stream_feed() -> Any:
    feed = StreamFeed()
    try:
        yield feed
    finally:
        feed.close()


@pytest.mark.django_db(transaction=True)
def test_hub_model_follows_random_service_writes(stream_feed: StreamFeed) -> None:
    started = time.monotonic()
    HubModelMachine.feed = stream_feed
    run_state_machine_as_test(
        HubModelMachine,
        settings=settings(
            max_examples=int(os.environ.get("HUB_MODEL_EXAMPLES", "15")),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    print(f"hub model: {STATS} in {time.monotonic() - started:.1f}s")
