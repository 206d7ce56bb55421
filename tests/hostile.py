"""Hostile input (issue 17): Hypothesis strategies for device-socket frames, connect parameters
and form fields, and the live runner that fires frames at joined sockets and checks the server
survived them. Used by the fuzz tests (gateways/tests/test_sockets_fuzz*.py,
firezone/tests/test_portal_forms_fuzz.py) and by bench/frames.py.

What is hostile: wrong JSON types, integers far outside 64 bits (and 5,000-digit ones), NUL
bytes, lone surrogates, 10 kB strings, deep nesting, missing and extra keys, bad refs and topics,
other accounts' ids and refs minted for another account's gateway.

`draw(strategy, n)` takes `n` examples of a strategy outside a `@given` test (generation phase
only, no example database): the live tests and the bench send them over a real socket, where a
per-example Hypothesis run (with shrinking) would redo the joins every time; a failure reports
the frame that caused it instead.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from tests.live import Device

NUL = "\x00"
LONG = "x" * 10_000
# Integers the channel layer (msgpack) cannot carry, and JSON numbers Python refuses to parse
# (more than 4,300 digits), plus the edges that still fit.
HUGE_INTS = [2**64, 2**64 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30, -(10**30), -1, 0]
HOSTILE_STRINGS = [
    "",
    " ",
    NUL,
    f"a{NUL}b",
    LONG,
    f"{LONG}{NUL}",
    "\ud800",  # a lone surrogate (sent as a `\ud800` escape)
    "💥" * 100,
    "../../etc/passwd",
    "'; DROP TABLE flows; --",
    "%00",
    "00000000-0000-0000-0000-000000000000",
]
# Depths of nested lists inside a payload (the channel layer's msgpack stops at 512).
DEPTHS = [8, 65, 300, 600, 900]
# Spec reasons of error replies (protocol.md §1.7, §3); anything else is a finding.
REASONS = {
    "unknown_message",
    "unmatched topic",
    "not_found",
    "offline",
    "forbidden",
    "invalid_ref",
    "join crashed",
    "version_mismatch",
}
TRACEBACK = re.compile(r"^Traceback \(most recent call last\)", re.M)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# ------------------------------------------------------------------ value strategies

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(["a", NUL, "é", "\n", "-"]), max_size=12),
    st.sampled_from(HOSTILE_STRINGS),
)

json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from([NUL, LONG])), children,
                        max_size=4),
    ),
    max_leaves=10,
)  # fmt: skip

hostile: st.SearchStrategy[Any] = st.one_of(
    json_values, st.sampled_from(DEPTHS).map(nested), st.sampled_from(HOSTILE_STRINGS)
)


@dataclass
class Ids:
    """Ids a fuzzed payload may name: the sender's own, another account's, unknown ones."""

    clients: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)  # gateway refs (signed elsewhere)

    def of(self, kind: str) -> st.SearchStrategy[Any]:
        known = getattr(self, kind) or [str(uuid.uuid4())]
        return st.one_of(
            st.sampled_from(known),
            st.sampled_from(known),
            st.sampled_from(known),
            st.uuids().map(str),
            st.sampled_from([s.upper() for s in known] + [f"{s}{NUL}" for s in known]),
            hostile,
        )

    def list_of(self, kind: str) -> st.SearchStrategy[Any]:
        lists = st.lists(self.of(kind), max_size=5)
        return st.one_of(lists, lists, lists, hostile)


def _payload(fields: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """The event's keys with plausible or hostile values, some keys dropped, extra keys added;
    or not an object at all."""
    full = st.fixed_dictionaries(dict(fields))

    @st.composite
    def mangled(draw: Any) -> Any:
        value = dict(draw(full))
        for key in list(value):
            if draw(st.integers(0, 5)) == 0:
                del value[key]
        if draw(st.integers(0, 5)) == 0:
            value[draw(st.sampled_from(["extra", NUL, LONG]))] = draw(hostile)
        return value

    return st.one_of(mangled(), mangled(), mangled(), hostile)


def event_payloads(ids: Ids) -> dict[tuple[str, str], st.SearchStrategy[Any]]:
    """(topic, event) → payloads, for every event a device sends after its join (protocol.md
    §3.1.6-§3.1.10, §3.2.5-§3.2.10, §3.3), an unknown one per topic and the heartbeat."""
    candidates = st.one_of(st.lists(st.text(max_size=30), max_size=3), hostile)
    flow = {"resource_id": ids.of("resources"), "connected_gateway_ids": ids.list_of("gateways")}
    to_gateways = {"gateway_ids": ids.list_of("gateways"), "candidates": candidates}
    to_clients = {"client_ids": ids.list_of("clients"), "candidates": candidates}
    client = {
        "create_flow": flow,
        "prepare_connection": flow,
        "request_connection": {
            "gateway_id": ids.of("gateways"),
            "resource_id": ids.of("resources"),
            "client_preshared_key": hostile,
            "client_payload": hostile,
        },
        "reuse_connection": {
            "gateway_id": ids.of("gateways"),
            "resource_id": ids.of("resources"),
            "payload": hostile,
        },
        "broadcast_ice_candidates": to_gateways,
        "broadcast_invalidated_ice_candidates": to_gateways,
        "no_such_event": {"x": hostile},
    }
    gateway = {
        "flow_authorized": {"ref": ids.of("refs")},
        "connection_ready": {"ref": ids.of("refs"), "gateway_payload": hostile},
        "broadcast_ice_candidates": to_clients,
        "broadcast_invalidated_ice_candidates": to_clients,
        "no_such_event": {"x": hostile},
    }
    found: dict[tuple[str, str], st.SearchStrategy[Any]] = {}
    for topic, events in (("client", client), ("gateway", gateway)):
        for event, fields in events.items():
            found[topic, event] = _payload(fields)
    found["relay", "no_such_event"] = _payload({"x": hostile})
    found["phoenix", "heartbeat"] = hostile
    return found


def join_payloads() -> dict[str, st.SearchStrategy[Any]]:
    """`phx_join` payloads per topic: the relay's `stamp_secret` (§3.3), anything for others."""
    relay = _payload({"stamp_secret": st.one_of(st.sampled_from(HOSTILE_STRINGS), hostile)})
    return {"client": hostile, "gateway": hostile, "relay": relay}


# ------------------------------------------------------------------ frames

refs: st.SearchStrategy[Any] = st.one_of(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.none(),
    st.text(max_size=8),
    st.sampled_from([2**64, -(2**63) - 1, 1.5, True, [], {}, NUL]),
)


def frame_text(topic: Any, event: Any, payload: Any, ref: Any, **extra: Any) -> str:
    return json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, **extra})


@st.composite
def frames(draw: Any, topic: str, event: str, payloads: st.SearchStrategy[Any]) -> str:
    """A V1 frame of `event` on `topic` (now and then on another topic, with a bad ref, a
    `join_ref`, or a key missing)."""
    ref = draw(refs)
    frame = {"topic": topic, "event": event, "payload": draw(payloads), "ref": ref}
    twist = draw(st.integers(0, 9))
    if twist == 0:
        frame["topic"] = draw(st.one_of(st.sampled_from(["client", "gateway", "relay", "phoenix"]),
                                        hostile))  # fmt: skip
    elif twist == 1:
        frame["join_ref"] = draw(refs)
    elif twist == 2:
        del frame[draw(st.sampled_from(sorted(frame)))]
    return json.dumps(frame)


def _raw() -> list[str]:
    """Frames that are not (valid) Phoenix V1 messages at all."""
    big = "1" * 5_000
    deep = 100_000
    return [
        "",
        "null",
        "[]",
        "{",
        "[" * deep + "]" * deep,
        '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":' + big + "}",
        '{"topic":"client","event":"create_flow","payload":NaN,"ref":1}',
        '{"topic":"client","event":"create_flow","payload":{"resource_id":' + big + '},"ref":1}',
        frame_text("phoenix", "heartbeat", {}, 2**64),
        frame_text(["client"], "phx_join", {}, 1),
        frame_text("client", 7, {}, 1),
        json.dumps([None, 1, "phoenix", "heartbeat", {}]),  # a V2 frame on a V1 socket
        frame_text("phoenix", "heartbeat", "x" * 600_000, 3),  # over the 512 KiB frame limit
    ]


RAW_FRAMES = _raw()


def all_frames(ids: Ids, topic: str) -> st.SearchStrategy[str]:
    """Frames of every event of `topic`'s sockets (and the heartbeat), mixed with raw junk."""
    payloads = event_payloads(ids)
    mine = [frames(t, e, s) for (t, e), s in payloads.items() if t in (topic, "phoenix")]
    return st.one_of(*mine, st.sampled_from(RAW_FRAMES))


def draw(strategy: st.SearchStrategy[Any], n: int, *, seed: int | None = None) -> list[Any]:
    """`n` examples of `strategy` (fewer only if it has fewer distinct ones)."""
    found: list[Any] = []

    @settings(
        max_examples=n,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    (hypothesis_seed(seed)(collect) if seed is not None else collect)()
    return found


# ------------------------------------------------------------------ the live runner


@dataclass
class Socket:
    """A joined device socket, what it received, and the topic it joined."""

    name: str
    device: Device
    topic: str
    received: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: int = 0

    async def heartbeat(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Send a heartbeat and wait for its reply; returns the frames that arrived before."""
        self.heartbeats += 1
        ref = 1_000_000 + self.heartbeats  # fuzzed refs stay below 10,001
        await self.device.send("phoenix", "heartbeat", {}, ref=ref)
        got: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no heartbeat reply; got {got}")
            frame = await self.device.recv(remaining)
            if frame.get("topic") == "phoenix" and frame.get("ref") == ref:
                self.received.extend(got)
                return got
            got.append(frame)


def frame_problems(name: str, sent: str, frames: Iterable[dict[str, Any]]) -> list[str]:
    """What is wrong with the frames a socket answered one fuzzed frame with: a channel closed
    (a crash, §1.9) or an error reason the spec does not have."""
    problems = []
    for frame in frames:
        event = frame.get("event")
        if event in ("phx_close", "phx_error"):
            problems.append(f"{name}: {event} after {sent[:300]!r}")
        elif event == "phx_reply" and frame["payload"].get("status") == "error":
            response = frame["payload"].get("response")
            reason = response.get("reason") if isinstance(response, dict) else None
            if reason not in REASONS:
                problems.append(f"{name}: error reply {response!r} to {sent[:300]!r}")
    return problems


async def fire(
    target: Socket,
    frames: Sequence[str],
    bystanders: Sequence[Socket] = (),
    *,
    check_every: int = 1,
    on_frame: Callable[[int], None] | None = None,
) -> list[str]:
    """Send `frames` one by one over `target`; after each (or every `check_every`) the target
    must still answer a heartbeat without having closed its channel, and so must every
    bystander (checked every 25 frames). Returns the problems found (empty: all good)."""
    problems: list[str] = []
    for i, text in enumerate(frames, 1):
        try:
            await target.device.send_raw(text)
            if i % check_every == 0 or i == len(frames):
                problems += frame_problems(target.name, text, await target.heartbeat())
            if bystanders and (i % 25 == 0 or i == len(frames)):
                for other in bystanders:
                    await other.heartbeat()
        except Exception as exc:  # the socket closed or stopped answering
            problems.append(f"{target.name}: {type(exc).__name__} {exc} after {text[:300]!r}")
            break
        if on_frame is not None:
            on_frame(i)
    return problems


def tracebacks(log: str) -> list[str]:
    """The tracebacks of a server log, each with its last line (the exception)."""
    found = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if TRACEBACK.match(line):
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                j += 1
            found.append("\n".join(lines[i : j + 1]))
    return found
