"""Outages degrade, they don't disconnect (issue 17): a real daphne on a PostgreSQL and a Redis of
the test's own (`tests.faults`), a client and a gateway joined, then one store is stopped and
started again.

* Redis killed (its data gone) and restarted after ~6 s: no socket is dropped; heartbeats are
  answered throughout; connects during the outage are refused 503 (connlib retries a 5xx);
  `create_flow` gets `flow_creation_failed`; a policy deleted while Redis was down (the commit
  succeeds, its publish fails) reaches the client (`resource_deleted`) and the gateway
  (`reject_access`) after the recovery; afterwards flows reach the gateway again.
* PostgreSQL stopped and started: no socket is dropped; a connect during the outage is refused
  503 and `create_flow` gets `flow_creation_failed`; afterwards connects and flows work again.

The daphne log holds no traceback at the end of either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.faults import (
    CLIENT_HEADERS,
    CLIENT_PATH,
    GATEWAY_HEADERS,
    GATEWAY_PATH,
    Postgres,
    Redis,
    helper,
    lab_env,
    server_errors,
    services,
)
from tests.faults import client_params as new_client
from tests.faults import gateway_params as new_gateway
from tests.live import Device, LiveServer, Rejected, reply, run_daphne

pytestmark = [pytest.mark.slow]

# Seconds within which a change made during an outage must reach the devices after recovery
# here (the benchmark's target is 2 s; a shared test machine gets some slack).
RECOVERY_DEADLINE = 6.0


@dataclass
class Lab:
    postgres: Postgres
    redis: Redis
    env: dict[str, str]
    world: dict[str, Any]
    server: LiveServer


@pytest.fixture
def lab() -> Iterator[Lab]:
    with services() as (postgres, redis):
        env = lab_env(postgres.url, redis.url)
        world = helper(env, "world")
        with run_daphne(env) as server:
            try:
                yield Lab(postgres, redis, env, world, server)
            finally:
                print("---- daphne log ----")
                print(server.log())


def client_params(lab: Lab, name: str = "laptop") -> dict[str, str]:
    return new_client(lab.world, name)


def gateway_params(lab: Lab) -> dict[str, str]:
    return new_gateway(lab.world)


async def join_client(lab: Lab, name: str = "laptop") -> tuple[Device, dict[str, Any]]:
    device = Device(lab.server)
    await device.connect(CLIENT_PATH, client_params(lab, name), CLIENT_HEADERS)
    assert await device.join("client") == reply("client", 0)
    init = await device.expect("init", "client", timeout=10)
    return device, init


async def join_gateway(lab: Lab) -> Device:
    device = Device(lab.server)
    await device.connect(GATEWAY_PATH, gateway_params(lab), GATEWAY_HEADERS)
    assert await device.join("gateway") == reply("gateway", 0)
    await device.expect("init", "gateway", timeout=10)
    return device


@pytest.fixture
async def joined(lab: Lab) -> AsyncIterator[tuple[Device, Device]]:
    gateway = await join_gateway(lab)
    client, init = await join_client(lab)
    assert [r["id"] for r in init["payload"]["resources"]] == [lab.world["resource_id"]]
    yield client, gateway
    await client.close()
    await gateway.close()


async def create_flow(client: Device, resource_id: str) -> None:
    payload = {"resource_id": resource_id, "connected_gateway_ids": []}
    await client.send("client", "create_flow", payload)


async def flow(client: Device, gateway: Device, resource_id: str, *, attempts: int = 1) -> None:
    """create_flow → authorize_flow on the gateway → flow_authorized → flow_created. A
    `flow_creation_failed` is retried after 0.5 s (connlib retries on its next packet) up to
    `attempts` times in all."""
    for attempt in range(attempts):
        await create_flow(client, resource_id)
        try:
            wait = 3 if attempt < attempts - 1 else 10
            authorize = (await gateway.expect("authorize_flow", "gateway", timeout=wait))["payload"]
            break
        except AssertionError:
            if attempt == attempts - 1:
                raise
            await client.expect("flow_creation_failed", "client", timeout=0.1)
            await asyncio.sleep(0.5)
    assert authorize["resource"]["id"] == resource_id
    ref = await gateway.send("gateway", "flow_authorized", {"ref": authorize["ref"]})
    assert await gateway.expect("phx_reply", "gateway", ref=ref) == reply("gateway", ref)
    created = await client.expect("flow_created", "client", timeout=10)
    assert created["payload"]["resource_id"] == resource_id


async def heartbeat(*devices: Device) -> None:
    """Every socket answers a heartbeat (it is up, its consumer alive)."""
    for device in devices:
        ref = await device.send("phoenix", "heartbeat", {})
        assert await device.expect("phx_reply", "phoenix", ref=ref) == reply("phoenix", ref)


async def refused(lab: Lab, path: str, params: dict[str, str], headers: dict[str, str]) -> int:
    try:
        async with Device(lab.server) as device:
            await device.connect(path, params, headers)
    except Rejected as rejected:
        return rejected.status
    return 101


async def test_a_redis_restart_drops_no_socket_and_delivers_what_changed_meanwhile(
    lab: Lab, joined: tuple[Device, Device]
) -> None:
    client, gateway = joined
    resource_id = lab.world["resource_id"]
    await flow(client, gateway, resource_id)
    leaving, _ = await join_client(lab, "leaving")

    lab.redis.kill()
    await asyncio.sleep(1)
    await leaving.close()  # a disconnect during the outage ends cleanly (checked in the log)
    # Connects are refused as temporary failures, never 500.
    assert await refused(lab, CLIENT_PATH, client_params(lab, "late"), CLIENT_HEADERS) == 503
    assert await refused(lab, GATEWAY_PATH, gateway_params(lab), GATEWAY_HEADERS) == 503
    # A flow request is answered, the socket stays.
    await create_flow(client, resource_id)
    failed = await client.expect("flow_creation_failed", "client", timeout=10)
    assert failed["payload"] == {"resource_id": resource_id, "reason": "offline"}
    # A write while Redis is down: committed, its publish lost.
    await asyncio.to_thread(
        helper, lab.env, "revoke", lab.world["actor_id"], lab.world["policy_id"]
    )
    await heartbeat(client, gateway)
    await asyncio.sleep(3)
    await heartbeat(client, gateway)

    lab.redis.start()
    recovered = time.monotonic()
    deleted = await client.expect("resource_deleted", "client", timeout=RECOVERY_DEADLINE)
    assert deleted["payload"] == resource_id
    rejected = await gateway.expect("reject_access", "gateway", timeout=RECOVERY_DEADLINE)
    assert rejected["payload"]["resource_id"] == resource_id
    assert time.monotonic() - recovered < RECOVERY_DEADLINE
    await heartbeat(client, gateway)

    # Everything resumes: a new grant reaches the client, a flow reaches the gateway (its
    # channel-layer group and presence were written again into the emptied Redis).
    second = lab.world["second_resource_id"]
    await asyncio.to_thread(
        helper, lab.env, "grant", lab.world["actor_id"], lab.world["group_id"], second
    )
    created = await client.expect("resource_created_or_updated", "client", timeout=10)
    assert created["payload"]["id"] == second
    await flow(client, gateway, second, attempts=3)
    late, init = await join_client(lab, "after")
    assert [r["id"] for r in init["payload"]["resources"]] == [second]
    await late.close()
    assert client.ws is not None and client.ws.close_code is None
    assert gateway.ws is not None and gateway.ws.close_code is None
    assert server_errors(lab.server.log()) == []


async def test_a_postgres_restart_drops_no_socket(lab: Lab, joined: tuple[Device, Device]) -> None:
    client, gateway = joined
    resource_id = lab.world["resource_id"]
    await flow(client, gateway, resource_id)

    await asyncio.to_thread(lab.postgres.stop)
    assert await refused(lab, CLIENT_PATH, client_params(lab, "late"), CLIENT_HEADERS) == 503
    assert await refused(lab, GATEWAY_PATH, gateway_params(lab), GATEWAY_HEADERS) == 503
    await create_flow(client, resource_id)
    failed = await client.expect("flow_creation_failed", "client", timeout=10)
    assert failed["payload"] == {"resource_id": resource_id, "reason": "offline"}
    # A legacy flow request gets an error reply.
    ref = await client.send("client", "prepare_connection", {"resource_id": resource_id})
    answer = await client.expect("phx_reply", "client", ref=ref, timeout=10)
    assert answer == reply("client", ref, "error", {"reason": "offline"})
    await heartbeat(client, gateway)

    await asyncio.to_thread(lab.postgres.start)
    await flow(client, gateway, resource_id, attempts=3)
    late, init = await join_client(lab, "after")
    assert [r["id"] for r in init["payload"]["resources"]] == [resource_id]
    await late.close()
    await heartbeat(client, gateway)
    assert client.ws is not None and client.ws.close_code is None
    assert gateway.ws is not None and gateway.ws.close_code is None
    assert server_errors(lab.server.log()) == []
