"""Hostile frames for every client, gateway and relay event (issue 17), against a live daphne
with really joined sockets of two accounts A and B.

Hypothesis draws the frames (tests/hostile.py): every event of protocol.md §3.1, §3.2 and §3.3 —
the current and the legacy client flow events, ICE candidates both ways, `flow_authorized` and
`connection_ready` with forged, foreign and stale refs, an unknown event, the heartbeat and
`phx_join` / `phx_leave` — with wrong types, huge and negative integers, NUL bytes, lone
surrogates, 10 kB strings, deep nesting, missing and extra keys, bad refs and topics, and account
B's client, gateway and resource ids. Each sender is one of A's sockets. After every frame:

* the sender answers a heartbeat and never got `phx_close` (a crash, §1.9) nor an error reason
  the spec does not have; A's other sockets and B's sockets answer heartbeats too;
* B's devices received nothing at all, and no row of B was written (flows, change log);
* every flow row (and change-log row) written for A is one its gateway was told about
  (`authorize_flow`, `request_connection` or `allow_access`): nothing half-written for a
  refused frame;
* the server log has no traceback.

`FUZZ_FRAMES` (default 500) frames per test; each test takes well under a minute.
"""

from __future__ import annotations

import os
from collections import Counter

import hypothesis.strategies as st
import pytest

from gateways.tests._fuzz_world import FLOW_PUSHES, World, counts, world
from gateways.tests._sockets_gateway import join_gateway, make_setup
from gateways.tests.sockets import stamp_secret
from tests import hostile
from tests.hostile import Socket, draw, fire, frame_problems
from tests.live import Device, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FRAMES = int(os.environ.get("FUZZ_FRAMES", "500"))


async def fuzz(live, w: World, target: Socket, frames: list[str]) -> None:
    start = live.log_path.stat().st_size
    before = await run_sync(counts, w.a, w.b)
    problems = await fire(target, frames, w.bystanders(target))
    for socket in w.sockets:  # drain what is still on its way
        try:
            await socket.heartbeat()
        except Exception as exc:
            problems.append(f"{socket.name}: {type(exc).__name__} {exc}")
    after = await run_sync(counts, w.a, w.b)
    with live.log_path.open("rb") as log:
        log.seek(start)
        tracebacks = hostile.tracebacks(log.read().decode(errors="replace"))
    told = sum(f.get("event") in FLOW_PUSHES for f in w.gateway.received)
    for socket in (w.b_client, w.b_gateway):
        problems += [f"{socket.name} received {f}" for f in socket.received]
    assert not problems, "\n".join(problems[:20])
    assert not tracebacks, "\n\n".join(tracebacks[:5])
    assert after["flows B"] == before["flows B"] and after["changes B"] == before["changes B"]
    assert after["flows A"] - before["flows A"] == told, (before, after, told)
    # A flow insert writes one change-log row; a refused frame none.
    assert after["changes A"] - before["changes A"] == told, (before, after, told)
    replies = Counter(_outcome(f) for f in target.received)
    print(f"{target.name}: {len(frames)} frames, {told} flows; answers: {dict(replies)}")


def _outcome(frame: dict) -> str:
    if frame.get("event") != "phx_reply":
        return str(frame.get("event"))
    payload = frame["payload"]
    return f"{payload['status']} {payload['response'].get('reason', '')}".strip()


def frames_for(w: World, topic: str, *events: str, n: int = FRAMES) -> list[str]:
    payloads = hostile.event_payloads(w.ids)
    strategies = [hostile.frames(topic, e, payloads[topic, e]) for e in events]
    return draw(st.one_of(*strategies), n)


async def test_client_events(live) -> None:
    w = await world(live)
    events = ["create_flow", "broadcast_ice_candidates", "broadcast_invalidated_ice_candidates"]
    await fuzz(live, w, w.client, frames_for(w, "client", *events, "no_such_event"))


async def test_legacy_client_events(live) -> None:
    w = await world(live)
    events = ["prepare_connection", "request_connection", "reuse_connection", "create_flow"]
    await fuzz(live, w, w.legacy, frames_for(w, "client", *events))


async def test_gateway_events(live) -> None:
    w = await world(live)
    events = [
        "flow_authorized",
        "connection_ready",
        "broadcast_ice_candidates",
        "broadcast_invalidated_ice_candidates",
        "no_such_event",
    ]
    await fuzz(live, w, w.gateway, frames_for(w, "gateway", *events))


async def test_relay_heartbeat_and_malformed_frames(live) -> None:
    w = await world(live)
    frames = frames_for(w, "relay", "no_such_event", n=FRAMES // 3)
    frames += frames_for(w, "phoenix", "heartbeat", n=FRAMES // 3)
    frames += hostile.RAW_FRAMES
    await fuzz(live, w, w.relay, frames)
    await fuzz(live, w, w.client, hostile.RAW_FRAMES)


@pytest.mark.parametrize("kind", ["client", "gateway", "relay"])
async def test_join_and_leave(live, kind: str) -> None:
    """`phx_join` with hostile payloads and topics, `phx_leave` with hostile payloads, on a socket
    of each kind: every one is answered (ok, `join crashed` or `unmatched topic`), the socket
    stays up, and a proper join afterwards works."""
    w = await world(live)
    start = live.log_path.stat().st_size
    target = {"client": w.client, "gateway": w.gateway, "relay": w.relay}[kind]
    payload = hostile.join_payloads()[kind]
    join = hostile.frames(kind, "phx_join", payload)
    leave = hostile.frames(kind, "phx_leave", hostile.hostile)
    frames = draw(st.one_of(join, leave), 12 if kind == "client" else 30)
    problems: list[str] = []
    for text in frames:
        await target.device.send_raw(text)
        got = await target.heartbeat(timeout=15)
        # Closing the joined channel is what a re-join or a leave does (§1.5, §1.8).
        problems += [p for p in frame_problems(kind, text, got) if "phx_close" not in p]
    assert not problems, "\n".join(problems[:20])
    proper = {"stamp_secret": stamp_secret()} if kind == "relay" else {}
    answer = await target.device.join(kind, proper)
    assert answer["payload"]["status"] == "ok", answer
    for socket in w.bystanders(target):
        await socket.heartbeat()
    with live.log_path.open("rb") as log:
        log.seek(start)
        tracebacks = hostile.tracebacks(log.read().decode(errors="replace"))
    assert not tracebacks, "\n\n".join(tracebacks[:5])


async def test_socket_survives_after_everything(live) -> None:
    """A fresh device after all the above still connects and joins (the server is healthy)."""
    setup = await run_sync(make_setup)
    device: Device
    device, _, _ = await join_gateway(live, setup.world)
    async with device:
        ref = await device.send("phoenix", "heartbeat", {})
        assert (await device.expect("phx_reply", "phoenix", ref=ref))["payload"]["status"] == "ok"
