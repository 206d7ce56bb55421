"""Hostile-frame run (issue 17): N Hypothesis-drawn frames at a live daphne over every socket kind.

    python -m firezone.devservices exec -- python bench/frames.py [--frames 5000] [--seed 1]

It needs DATABASE_URL and REDIS_URL (devservices gives throwaway ones), migrates that database
and seeds two accounts A and B (tests: gateways/tests/_fuzz_world.py). One daphne with the
production socket options serves them; A's current client, 1.3 client, gateway and self-hosted
relay are joined and each gets its share of the frames (tests/hostile.py: every event of its
channel, the heartbeat, `phx_join`-free junk: wrong types, huge and negative integers, NUL bytes,
lone surrogates, 10 kB strings, deep nesting, missing keys, bad refs and topics, B's ids and refs
minted for B's gateway). After every frame the sender must answer a heartbeat without having
closed its channel; B's client and gateway must hear nothing; B's rows must not change.

Prints "frames fuzzed: N", "server tracebacks: T", the other findings, and PASS (exit 0) when
T == 0 and nothing else went wrong, FAIL (exit 1) otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench._env import configure_environment  # noqa: E402

SHARES = {"client A": 0.35, "legacy client A": 0.25, "gateway A": 0.3, "relay A": 0.1}


def setup() -> dict[str, str]:
    env = configure_environment(
        make_target="bench-faults",
        script="frames.py",
        allowed_hosts="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    # This process drives sockets and reads rows from one event loop (seeding, counts).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


async def run(server, frames_total: int, seed: int) -> tuple[int, list[str]]:
    import hypothesis.strategies as st

    from gateways.tests._fuzz_world import counts, world
    from tests import hostile
    from tests.live import run_sync

    w = await world(server)
    before = await run_sync(counts, w.a, w.b)
    problems: list[str] = []
    sent = 0
    started = time.monotonic()
    for target in (w.client, w.legacy, w.gateway, w.relay):
        n = round(frames_total * SHARES[target.name])
        strategy = hostile.all_frames(w.ids, target.topic)
        frames = hostile.draw(st.one_of(strategy), n, seed=seed)
        print(f"   {target.name}: {len(frames)} frames", flush=True)
        problems += await hostile.fire(target, frames, w.bystanders(target))
        sent += len(frames)
    for socket in w.sockets:
        try:
            await socket.heartbeat()
        except Exception as exc:
            problems.append(f"{socket.name}: {type(exc).__name__} {exc}")
    for socket in (w.b_client, w.b_gateway):
        problems += [f"{socket.name} received {f}" for f in socket.received]
    after = await run_sync(counts, w.a, w.b)
    if (after["flows B"], after["changes B"]) != (before["flows B"], before["changes B"]):
        problems.append(f"account B's rows changed: {before} -> {after}")
    elapsed = time.monotonic() - started
    print(f"   {sent} frames in {elapsed:.1f} s ({sent / elapsed:.0f}/s, a heartbeat after each)")
    return sent, problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=5000, help="frames to send (default 5000)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default random)")
    args = parser.parse_args(argv)
    setup()
    from tests import hostile
    from tests.live import run_daphne, server_env

    env = server_env(DEBUG="false")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    print(f"frames bench: {args.frames} hostile frames over client, gateway and relay sockets")
    with run_daphne(env) as server:
        sent, problems = asyncio.run(run(server, args.frames, args.seed))
        time.sleep(0.5)  # let the last handlers log
        tracebacks = hostile.tracebacks(server.log())
    print(f"frames fuzzed: {sent}")
    print(f"server tracebacks: {len(tracebacks)}")
    for text in tracebacks[:5]:
        print(text)
    print(f"other findings: {len(problems)}")
    for problem in problems[:20]:
        print(f"   {problem}")
    ok = not tracebacks and not problems
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
