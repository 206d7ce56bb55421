"""Relay selection (protocol.md §4.2) and when `relays_presence` is pushed (§4.4)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from gateways import presence
from gateways.relay_selection import (
    Action,
    Push,
    RelayCandidate,
    RelayLeft,
    RelaysJoined,
    RelayWatch,
    SchedulePush,
    Subscribe,
    Unsubscribe,
    connected_relays,
    load_balance_relays,
    relay_watch_handle,
    relay_watch_start,
)
from gateways.tests._presence import new_id, presence_env_fixture  # noqa: F401
from gateways.tests.factories import RelayFactory, RelayGroupFactory


def _relay(rid: str, lat: float | None = None, lon: float | None = None, secret: str = "s"):
    return RelayCandidate(rid, "192.0.2.1", None, 3478, lat, lon, secret, 0)


# --- load balancing -------------------------------------------------------------------------------

BERLIN = (52.52, 13.40)
PARIS = (48.86, 2.35)
NEW_YORK = (40.71, -74.01)
TOKYO = (35.68, 139.69)


@pytest.mark.parametrize("seed", range(20))
def test_two_nearest_locations_one_random_relay_each(seed: int) -> None:
    berlin = [_relay("b1", *BERLIN), _relay("b2", *BERLIN), _relay("b3", *BERLIN)]
    paris = [_relay("p1", *PARIS), _relay("p2", *PARIS)]
    others = [_relay("ny", *NEW_YORK), _relay("tk", *TOKYO), _relay("unknown")]
    candidates = others + paris + berlin
    random.Random(seed).shuffle(candidates)

    picked = load_balance_relays(candidates, 52.0, 13.0, random.Random(seed))
    assert len(picked) == 2
    assert picked[0] in berlin and picked[1] in paris


def test_every_relay_of_a_location_gets_picked_sometimes() -> None:
    berlin = [_relay("b1", *BERLIN), _relay("b2", *BERLIN), _relay("b3", *BERLIN)]
    rng = random.Random(1)
    seen = {load_balance_relays(berlin, *BERLIN, rng)[0].id for _ in range(200)}
    assert seen == {"b1", "b2", "b3"}


def test_unknown_relay_coordinates_sort_after_every_known_distance() -> None:
    unknown = [_relay("u1"), _relay("u2", 10.0, None)]
    tokyo = _relay("tk", *TOKYO)
    picked = load_balance_relays([*unknown, tokyo], *BERLIN, random.Random(3))
    assert picked[0] == tokyo and picked[1] in unknown
    assert load_balance_relays(unknown, *BERLIN, random.Random(3))[0] in unknown


@pytest.mark.parametrize(("lat", "lon"), [(None, None), (52.0, None), (None, 13.0)])
def test_unknown_device_location_takes_two_random_relays(lat, lon) -> None:
    candidates = [_relay(f"r{i}", *BERLIN) for i in range(6)]
    seen: set[Any] = set()
    for seed in range(30):
        picked = load_balance_relays(candidates, lat, lon, random.Random(seed))
        assert len(picked) == 2 and len(set(picked)) == 2
        seen.update(r.id for r in picked)
    assert len(seen) == 6  # not always the first two
    assert candidates == [_relay(f"r{i}", *BERLIN) for i in range(6)]  # input untouched


def test_few_candidates() -> None:
    assert load_balance_relays([], 1.0, 2.0) == []
    assert load_balance_relays([], None, None) == []
    only = _relay("one", *PARIS)
    assert load_balance_relays([only], 1.0, 2.0) == [only]
    assert load_balance_relays([only], None, None) == [only]


def test_scenario_22_two_nearby_relays_are_both_selected() -> None:
    rl1, rl2 = _relay("rl1", 37.0, -120.0), _relay("rl2", 38.0, -121.0)
    picked = load_balance_relays([rl2, rl1], 37.5, -120.5)
    assert {r.id for r in picked} == {"rl1", "rl2"}


# --- connected relays -----------------------------------------------------------------------------


async def _track_relay(tracker, relay, secret: str, online_at: int | None = None) -> None:
    """What the relay socket registers (§4.1), minus the group topic."""
    meta = {"secret": secret} if online_at is None else {"secret": secret, "online_at": online_at}
    topic = (
        presence.GLOBAL_RELAYS
        if relay.account_id is None
        else presence.account_relays_topic(relay.account_id)
    )
    await tracker.track(topic, str(relay.id), meta)
    await tracker.track(presence.relay_topic(relay.id), str(relay.id), {})


@database_sync_to_async
def _relays():
    """A global relay, two relays of account A (one at Berlin), one of another account."""
    global_relay = RelayFactory(
        group=RelayGroupFactory(global_=True),
        ipv4="192.0.2.10",
        ipv6="2001:db8::10",
        last_seen_remote_ip_location_lat=PARIS[0],
        last_seen_remote_ip_location_lon=PARIS[1],
    )
    group = RelayGroupFactory()
    mine = RelayFactory(
        group=group,
        last_seen_remote_ip_location_lat=BERLIN[0],
        last_seen_remote_ip_location_lon=BERLIN[1],
    )
    mine_too = RelayFactory(group=group)
    other = RelayFactory()
    return global_relay, mine, mine_too, other


@pytest.mark.django_db(transaction=True)
async def test_connected_relays_of_an_account(presence_env) -> None:
    global_relay, mine, _mine_too, other = await _relays()
    account_id = mine.account_id
    trackers = [presence.PresenceTracker() for _ in range(5)]
    await _track_relay(trackers[0], global_relay, "g1")
    await _track_relay(trackers[1], mine, "old", online_at=100)
    await _track_relay(trackers[2], mine, "new", online_at=200)  # newest entry's secret wins
    await _track_relay(trackers[3], other, "x")
    # Present in this account's presence but not in the DB (deleted): not a candidate.
    await trackers[4].track(presence.account_relays_topic(account_id), new_id(), {"secret": "d"})
    # mine_too is offline.

    found = await connected_relays(account_id)
    assert {c.id: c.secret for c in found} == {str(global_relay.id): "g1", str(mine.id): "new"}
    by_id = {c.id: c for c in found}
    assert by_id[str(global_relay.id)] == RelayCandidate(
        str(global_relay.id),
        "192.0.2.10",
        "2001:db8::10",
        3478,
        PARIS[0],
        PARIS[1],
        "g1",
        by_id[str(global_relay.id)].online_at,
    )
    assert (by_id[str(mine.id)].lat, by_id[str(mine.id)].online_at) == (BERLIN[0], 200)

    assert [c.id for c in await connected_relays(account_id, exclude={mine.id})] == [
        str(global_relay.id)
    ]
    # The other account sees the global relay and its own.
    assert {c.id for c in await connected_relays(other.account_id)} == {
        str(global_relay.id),
        str(other.id),
    }

    # The restarted relay's new secret is seen (row cache keyed by presence identity).
    await trackers[2].untrack_all()
    assert {c.id: c.secret for c in await connected_relays(account_id)}[str(mine.id)] == "old"
    # A deleted row disappears once its presence identity changes.
    mine_id = str(mine.id)
    await database_sync_to_async(mine.delete)()
    mine.id = mine_id
    assert mine_id in {c.id for c in await connected_relays(account_id)}  # cached
    await trackers[1].untrack_all()
    trackers.append(presence.PresenceTracker())
    await _track_relay(trackers[-1], mine, "again", online_at=300)
    assert await presence.list_presences(presence.relay_topic(mine_id))
    assert [c.id for c in await connected_relays(account_id)] == [str(global_relay.id)]
    for tracker in trackers:
        await tracker.untrack_all()


# --- RelayWatch: the pure state machine -----------------------------------------------------------

ACCOUNT = "acc"
ACCOUNT_TOPICS = {f"account_relays:{ACCOUNT}", "global_relays"}


def _watch() -> RelayWatch:
    return RelayWatch(ACCOUNT, debounce_ms=3000)


def _leave(relay_id: str) -> dict:
    return {
        "type": "presence.diff",
        "topic": f"relays:{relay_id}",
        "joins": {},
        "leaves": {relay_id: {"online_at": 1}},
    }


def _join(relay_id: str, secret: str, topic: str = "global_relays") -> dict:
    return {
        "type": "presence.diff",
        "topic": topic,
        "joins": {relay_id: {"secret": secret, "online_at": 1}},
        "leaves": {},
    }


def _topics(actions, kind) -> set[str]:
    return {a.topic for a in actions if isinstance(a, kind)}


def _pushes(actions) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    return [
        (a.disconnected_ids, tuple(f"{r.id}:{r.secret}" for r in a.connected))
        for a in actions
        if isinstance(a, Push)
    ]


def test_start_watches_selected_relays_or_account_wide_presence() -> None:
    watch = _watch()
    actions = watch.start([_relay("x", secret="sx"), _relay("y", secret="sy")])
    assert actions == [
        Subscribe("relays:x", "presence.relays.x"),
        Subscribe("relays:y", "presence.relays.y"),
    ]
    assert watch.secrets == {"x": "sx", "y": "sy"} and not watch.watching_account

    empty = _watch()
    assert _topics(empty.start([]), Subscribe) == ACCOUNT_TOPICS
    assert empty.watching_account
    assert Subscribe("global_relays", "presence.global_relays") in _watch().start([])


def test_begin_then_start_closes_the_join_race() -> None:
    watch = _watch()
    assert _topics(watch.begin(), Subscribe) == ACCOUNT_TOPICS
    actions = watch.start([_relay("x")])
    assert _topics(actions, Unsubscribe) == ACCOUNT_TOPICS
    assert _topics(actions, Subscribe) == {"relays:x"}
    other = _watch()
    other.begin()
    assert other.start([]) == [] and other.watching_account


def test_leave_is_debounced_and_pushed_with_the_new_selection() -> None:
    watch = _watch()
    watch.start([_relay("x", secret="sx"), _relay("y", secret="sy")])
    assert watch.classify(_leave("x")) == RelayLeft("x")

    actions = watch.relay_left("x", [_relay("y", secret="sy")], now=100.0)
    assert actions[0] == Unsubscribe("relays:x", "presence.relays.x")
    assert _pushes(actions) == []  # nothing now...
    [timer] = [a for a in actions if isinstance(a, SchedulePush)]
    assert (timer.delay, timer.due_at) == (3.0, 103.0)
    assert watch.pending == {"x": "sx"}
    assert watch.subscribed == {"relays:y"}  # still has relays: no account-wide watch

    assert _pushes(watch.timer_fired(timer.timer_id)) == [(("x",), ("y:sy",))]  # ...then
    assert watch.pending == {}
    assert watch.timer_fired(timer.timer_id) == []


def test_leave_of_the_last_relay_watches_account_wide_presence() -> None:
    watch = _watch()
    watch.start([_relay("x", secret="sx")])
    actions = watch.relay_left("x", [], now=0.0)
    assert _topics(actions, Unsubscribe) == {"relays:x"}
    assert _topics(actions, Subscribe) == ACCOUNT_TOPICS
    [timer] = [a for a in actions if isinstance(a, SchedulePush)]
    assert _pushes(watch.timer_fired(timer.timer_id)) == [(("x",), ())]


def test_flap_with_the_same_secret_is_cancelled() -> None:
    watch = _watch()
    watch.start([_relay("x", secret="sx")])
    [timer] = [a for a in watch.relay_left("x", [], now=0.0) if isinstance(a, SchedulePush)]

    assert watch.classify(_join("x", "sx", f"account_relays:{ACCOUNT}")) == RelaysJoined(
        {"x": "sx"}
    )
    actions = watch.relays_joined({"x": "sx"}, [_relay("x", secret="sx")])
    assert _pushes(actions) == [((), ("x:sx",))]
    assert _topics(actions, Unsubscribe) == ACCOUNT_TOPICS
    assert _topics(actions, Subscribe) == {"relays:x"}
    assert watch.pending == {}
    assert watch.timer_fired(timer.timer_id) == []  # the debounced disconnect never happens


def test_restart_with_a_new_secret_is_reported_immediately_and_once() -> None:
    watch = _watch()
    watch.start([_relay("x", secret="old")])
    [timer] = [a for a in watch.relay_left("x", [], now=0.0) if isinstance(a, SchedulePush)]

    actions = watch.relays_joined({"x": "new"}, [_relay("x", secret="new")])
    assert _pushes(actions) == [(("x",), ("x:new",))]
    assert watch.secrets == {"x": "new"}
    assert watch.timer_fired(timer.timer_id) == []  # not reported a second time


def test_a_pending_relay_that_did_not_come_back_is_reported_with_the_new_one() -> None:
    watch = _watch()
    watch.start([_relay("x", secret="sx")])
    [timer] = [a for a in watch.relay_left("x", [], now=0.0) if isinstance(a, SchedulePush)]
    actions = watch.relays_joined({"y": "sy"}, [_relay("y", secret="sy")])
    assert _pushes(actions) == [(("x",), ("y:sy",))]
    assert watch.timer_fired(timer.timer_id) == []


def test_first_relay_appears_while_watching_account_wide_presence() -> None:
    watch = _watch()
    watch.start([])
    event = watch.classify(_join("x", "sx"))
    assert event == RelaysJoined({"x": "sx"})
    assert watch.relays_joined({"x": "sx"}, []) == []  # empty selection: keep watching
    assert watch.watching_account

    actions = watch.relays_joined({"x": "sx"}, [_relay("x", secret="sx")])
    assert _pushes(actions) == [((), ("x:sx",))]
    assert watch.subscribed == {"relays:x"}
    # A second relay joining now is not announced: the channel no longer watches those topics.
    assert watch.classify(_join("y", "sy")) is None
    assert watch.classify(_join("y", "sy", f"account_relays:{ACCOUNT}")) is None


def test_new_relays_are_not_announced_while_having_relays() -> None:
    watch = _watch()
    watch.start([_relay("x")])
    assert watch.classify(_join("y", "sy")) is None
    # Joins on a per-relay topic are ignored, and so are leaves of other keys.
    assert watch.classify({**_join("x", "s2", "relays:x")}) is None
    assert watch.classify({**_leave("x"), "leaves": {"other": {}}}) is None
    assert watch.classify(_leave("not-selected")) is None
    # Account-wide leaves mean nothing (per-relay topics report those).
    empty = _watch()
    empty.start([])
    assert empty.classify({**_join("x", "s"), "joins": {}, "leaves": {"x": {}}}) is None


def test_restart_seen_on_leave_with_another_live_connection() -> None:
    watch = _watch()
    watch.start([_relay("x", secret="old"), _relay("y", secret="sy")])
    actions = watch.relay_restarted("x", [_relay("x", secret="new"), _relay("y", secret="sy")])
    assert _pushes(actions) == [(("x",), ("x:new", "y:sy"))]
    assert watch.secrets == {"x": "new", "y": "sy"}
    assert watch.subscribed == {"relays:x", "relays:y"}


def test_stop_leaves_every_group_and_voids_timers() -> None:
    watch = _watch()
    watch.start([_relay("x", secret="sx"), _relay("y")])
    actions = watch.relay_left("x", [_relay("y")], now=0)
    [timer] = [a for a in actions if isinstance(a, SchedulePush)]
    assert _topics(watch.stop(), Unsubscribe) == {"relays:y"}
    assert watch.subscribed == set()
    assert watch.timer_fired(timer.timer_id) == []


def test_debounce_defaults_to_the_setting(settings) -> None:
    assert RelayWatch(ACCOUNT).debounce_ms == 3000
    settings.RELAYS_PRESENCE_DEBOUNCE_MS = 50
    assert RelayWatch(ACCOUNT).debounce_ms == 50


# --- RelayWatch driven by real presence (scenarios 22-26 of protocol.md §7) -----------------------


class Device:
    """What a client/gateway consumer does with the watch's actions."""

    def __init__(self, account_id) -> None:
        self.layer = get_channel_layer()
        self.watch = RelayWatch(account_id)
        self.pushes: list[Action] = []
        self.channel = ""

    async def start(self) -> list[RelayCandidate]:
        self.channel = await self.layer.new_channel()
        selection, actions = await relay_watch_start(self.watch, lat=None, lon=None)
        await self.perform(actions)
        return selection

    async def perform(self, actions) -> None:
        for action in actions:
            if isinstance(action, Subscribe):
                await self.layer.group_add(action.group, self.channel)
            elif isinstance(action, Unsubscribe):
                await self.layer.group_discard(action.group, self.channel)
            elif isinstance(action, Push):
                self.pushes.append(action)
            elif isinstance(action, SchedulePush):
                asyncio.get_running_loop().call_later(action.delay, self._fire, action.timer_id)

    def _fire(self, timer_id: int) -> None:
        self.pushes.extend(self.watch.timer_fired(timer_id))

    async def pump(self, seconds: float) -> None:
        """Handle presence diffs for `seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(self.layer.receive(self.channel), left)
            except TimeoutError:
                return
            await self.perform(await relay_watch_handle(self.watch, message, lat=None, lon=None))

    def seen(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        return _pushes(self.pushes)


@database_sync_to_async
def _global_relays(n: int):
    group = RelayGroupFactory(global_=True)
    account = RelayGroupFactory().account  # the device's account
    assert account is not None
    return account.id, [RelayFactory(group=group) for _ in range(n)]


DEBOUNCE = 0.3


@pytest.fixture
def fast_debounce(settings):
    settings.RELAYS_PRESENCE_DEBOUNCE_MS = int(DEBOUNCE * 1000)


@pytest.mark.django_db(transaction=True)
async def test_scenario_23_relay_leave_is_debounced(presence_env, fast_debounce) -> None:
    account_id, (rl1, rl2) = await _global_relays(2)
    t1, t2 = presence.PresenceTracker(), presence.PresenceTracker()
    await _track_relay(t1, rl1, "s1")
    await _track_relay(t2, rl2, "s2")
    device = Device(account_id)
    assert {r.id for r in await device.start()} == {str(rl1.id), str(rl2.id)}

    await t1.untrack_all()
    await device.pump(DEBOUNCE / 2)
    assert device.seen() == []  # not before the debounce
    await device.pump(DEBOUNCE)
    assert device.seen() == [((str(rl1.id),), (f"{rl2.id}:s2",))]
    await t2.untrack_all()


@pytest.mark.django_db(transaction=True)
async def test_scenario_24_first_relay_appears_later_ones_not_announced(
    presence_env, fast_debounce
) -> None:
    account_id, (rl1, rl3) = await _global_relays(2)
    device = Device(account_id)
    assert await device.start() == []

    t1 = presence.PresenceTracker()
    await _track_relay(t1, rl1, "s1")
    await device.pump(0.3)
    assert device.seen() == [((), (f"{rl1.id}:s1",))]

    t3 = presence.PresenceTracker()
    await _track_relay(t3, rl3, "s3")
    await device.pump(0.3)
    assert len(device.seen()) == 1  # nothing about RL3
    await t1.untrack_all()
    await t3.untrack_all()


@pytest.mark.django_db(transaction=True)
async def test_scenario_25_flap_with_the_same_secret_is_hidden(presence_env, fast_debounce) -> None:
    account_id, (rl1,) = await _global_relays(1)
    t1 = presence.PresenceTracker()
    await _track_relay(t1, rl1, "s1")
    device = Device(account_id)
    await device.start()

    await t1.untrack_all()
    await device.pump(0.1)  # the leave is handled: pending, watching account-wide presence
    assert device.watch.pending == {str(rl1.id): "s1"}
    again = presence.PresenceTracker()
    await _track_relay(again, rl1, "s1")
    await device.pump(DEBOUNCE * 2)
    assert all(str(rl1.id) not in disconnected for disconnected, _ in device.seen())
    assert device.seen() == [((), (f"{rl1.id}:s1",))]
    await again.untrack_all()


@pytest.mark.django_db(transaction=True)
async def test_scenario_26_restart_with_a_new_secret_is_reported_promptly(
    presence_env, fast_debounce
) -> None:
    account_id, (rl1,) = await _global_relays(1)
    t1 = presence.PresenceTracker()
    await _track_relay(t1, rl1, "s1")
    device = Device(account_id)
    await device.start()

    await t1.untrack_all()
    await device.pump(0.1)
    restarted = presence.PresenceTracker()
    await _track_relay(restarted, rl1, "s2")
    await device.pump(0.1)  # well before the debounce
    assert device.seen() == [((str(rl1.id),), (f"{rl1.id}:s2",))]
    await device.pump(DEBOUNCE * 2)
    assert len(device.seen()) == 1
    await restarted.untrack_all()


@pytest.mark.django_db(transaction=True)
async def test_a_relay_online_through_another_connection_did_not_leave(
    presence_env, fast_debounce
) -> None:
    account_id, (rl1,) = await _global_relays(1)
    old, overlapping = presence.PresenceTracker(), presence.PresenceTracker()
    await _track_relay(old, rl1, "s1", online_at=100)
    await _track_relay(overlapping, rl1, "s1", online_at=101)
    device = Device(account_id)
    await device.start()

    await old.untrack_all()
    await device.pump(DEBOUNCE * 2)
    assert device.seen() == []
    assert device.watch.subscribed == {f"relays:{rl1.id}"}
    await overlapping.untrack_all()


@pytest.mark.django_db(transaction=True)
async def test_a_restarted_relay_that_connected_before_its_old_socket_left(
    presence_env, fast_debounce
) -> None:
    account_id, (rl1,) = await _global_relays(1)
    old = presence.PresenceTracker()
    await _track_relay(old, rl1, "s1", online_at=100)
    device = Device(account_id)
    await device.start()

    restarted = presence.PresenceTracker()
    await _track_relay(restarted, rl1, "s2", online_at=200)
    await device.pump(0.1)
    assert device.seen() == []  # per-relay joins are ignored
    await old.untrack_all()
    await device.pump(0.1)
    assert device.seen() == [((str(rl1.id),), (f"{rl1.id}:s2",))]
    await restarted.untrack_all()
