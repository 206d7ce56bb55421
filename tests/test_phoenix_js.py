"""The official Phoenix JS client (npm `phoenix` 1.8, V2 serializer) against the client socket.

`tests/js/phoenix_client.js` connects with `new Socket(url, {transport: ws, params})`, joins
`"client"`, sends one heartbeat and waits for `init`; it prints what it saw as JSON lines. The
npm packages are installed into `tests/js/node_modules` with `npm ci` on first use (CI installs
Node and npm: .ci/run).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from accounts.tests.factories import GroupFactory, MembershipFactory
from gateways.tests.sockets import World, make_world
from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory
from tests import live as harness
from tests.live import LiveServer, run_sync
from tests.node import node_with_packages

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The live-daphne fixtures (tests/live.py).
live, live_daphne = harness.live, harness.live_daphne

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "phoenix_client.js"
USER_AGENT = "Mac OS/14.5 (arm64) connlib/1.4.0"


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_packages(JS_DIR, "phoenix")


def seed(world: World) -> Any:
    """One DNS resource of site S granted to the world's user through a group policy."""
    group = GroupFactory(account=world.account)
    MembershipFactory(group=group, actor=world.actor, account=world.account)
    resource = ResourceFactory(account=world.account)
    ConnectionFactory(resource=resource, gateway_group=world.site, account=world.account)
    PolicyFactory(account=world.account, actor_group=group, resource=resource)
    return resource


async def run_client(
    node: str, server: LiveServer, params: dict[str, Any], *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    """Run the JS client; returns (exit code, its JSON lines, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        f"ws://{server.host}/client",
        "--user-agent",
        USER_AGENT,
        *args,
        cwd=JS_DIR,
        env={**os.environ, "PHOENIX_PARAMS": json.dumps(params)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    lines = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    assert proc.returncode is not None  # communicate() waited for the exit
    return proc.returncode, lines, stderr.decode()


def of_type(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == kind]


def explain(code: int, lines: list[dict[str, Any]], stderr: str, server: LiveServer) -> str:
    out = "\n".join(json.dumps(line)[:2000] for line in lines)
    return f"exit {code}\n{out}\n{stderr}\n---- daphne log (tail) ----\n{server.log()[-6000:]}"


async def test_phoenix_js_connects_with_v2_joins_and_gets_heartbeat_replies(live, node) -> None:
    world = await run_sync(make_world)
    code, lines, stderr = await run_client(node, live, world.client_params())
    why = explain(code, lines, stderr, live)

    assert code == 0, why
    [connect] = of_type(lines, "connect")
    assert connect == {
        "type": "connect",
        "url": f"ws://{live.host}/client/websocket",
        "vsn": "2.0.0",
    }
    frames = of_type(lines, "frame")
    assert frames and all(f["v2"] for f in frames), why  # every frame was a V2 array
    [joined] = of_type(lines, "joined")
    assert joined["response"] == {}
    join_reply = next(f for f in frames if f["topic"] == "client" and f["event"] == "phx_reply")
    assert join_reply["payload"]["status"] == "ok"
    assert join_reply["join_ref"] is not None and join_reply["join_ref"] == join_reply["ref"]
    [heartbeat] = of_type(lines, "heartbeat")
    assert isinstance(heartbeat["rtt_ms"], int)
    [hb_reply] = [f for f in frames if f["topic"] == "phoenix"]
    assert hb_reply["event"] == "phx_reply"
    assert hb_reply["payload"] == {"status": "ok", "response": {}}
    assert hb_reply["join_ref"] is None
    assert of_type(lines, "done") == [{"type": "done"}]


async def test_phoenix_js_receives_init(live, node) -> None:
    world = await run_sync(make_world)
    resource = await run_sync(seed, world)
    code, lines, stderr = await run_client(node, live, world.client_params(), "--expect", "init")
    why = explain(code, lines, stderr, live)

    assert code == 0, why
    [joined] = of_type(lines, "joined")
    assert joined["response"] == {}
    [init] = of_type(lines, "push")
    assert init["event"] == "init"
    payload = init["payload"]
    assert {"resources", "relays", "interface"} <= payload.keys(), why
    assert [r["id"] for r in payload["resources"]] == [str(resource.pk)]
    assert payload["relays"] == []  # no relay is connected
    assert {"ipv4", "ipv6", "upstream_dns", "search_domain"} <= payload["interface"].keys()
    [init_frame] = [f for f in of_type(lines, "frame") if f["event"] == "init"]
    assert init_frame["topic"] == "client" and init_frame["v2"]
    assert of_type(lines, "heartbeat")
