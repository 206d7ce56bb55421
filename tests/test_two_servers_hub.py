"""Two daphne processes on one database and one Redis, several clients of one account on each:
a policy change is applied by each process once (one account hub per process, one stream
message per transaction), every client on both servers is told exactly once, and a flow from a
client on A through a gateway on B still completes afterwards.

What each process did is read from its own `/metrics` (served to 127.0.0.1).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import ActorGroupMembership
from accounts.services.tokens import token_create
from accounts.tests.factories import ActorFactory, GroupFactory, IdentityFactory, subject_for
from gateways.models import Client, Gateway
from gateways.tests.sockets import CLIENT_PATH, GATEWAY_PATH, GATEWAY_UA, World, make_world
from resources.models import Flow, Policy, Resource
from resources.services.policies import policy_create, policy_delete
from resources.tests.factories import ConnectionFactory, ResourceFactory
from tests.live import (
    DEVICE_HEADERS,
    Device,
    LiveServer,
    reply,
    run_sync,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENT_HEADERS = {**DEVICE_HEADERS, "User-Agent": "iOS/17.5 (iPhone) connlib/1.4.0"}
GATEWAY_HEADERS = {"User-Agent": GATEWAY_UA, "X-Forwarded-For": "203.0.113.80"}
CLIENTS_PER_SERVER = 3


# --- the world: two users of one group, each with their own client token --------------------------


@dataclass
class Team:
    world: World
    resource: Resource
    policy: Policy
    group_id: Any
    tokens: list[str]  # client tokens of the two users


def make_team() -> Team:
    world = make_world()
    account = world.account
    group = GroupFactory(account=account)
    other = ActorFactory(account=account)
    identity = IdentityFactory(actor=other, account=account, provider=world.identity.provider)
    other_token = token_create(
        type="client",
        account=account,
        actor=other,
        identity=identity,
        expires_at=timezone.now() + timedelta(days=7),
        nonce="n0nce",
    )
    for actor in (world.actor, other):
        ActorGroupMembership.objects.create(group=group, actor=actor, account=account)
    resource = ResourceFactory(account=account, address="app.example.com", name="app")
    ConnectionFactory(resource=resource, gateway_group=world.site, account=account)
    policy = policy_create(
        subject=subject_for(world.actor), actor_group_id=group.pk, resource_id=resource.pk
    )
    return Team(world, resource, policy, group.pk, [world.client_token, other_token.encoded])


def delete_policy(team: Team) -> None:
    policy_delete(subject=subject_for(team.world.actor), policy=team.policy.pk)


def grant_again(team: Team) -> None:
    policy_create(
        subject=subject_for(team.world.actor),
        actor_group_id=team.group_id,
        resource_id=team.resource.pk,
    )


# --- /metrics of one server process ---------------------------------------------------------------


def scrape(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, body = server.http("GET", "/metrics")
    assert status == 200, body[:200]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(after: dict, before: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- devices --------------------------------------------------------------------------------------


async def join_client(server: LiveServer, team: Team, token: str, name: str) -> Device:
    device = Device(server)
    await device.connect(
        CLIENT_PATH, team.world.client_params(token=token, name=name), CLIENT_HEADERS
    )
    assert await device.join("client") == reply("client", 0)
    init = await device.expect("init", "client", timeout=10)
    assert [r["id"] for r in init["payload"]["resources"]] == [str(team.resource.pk)]
    return device


async def flow_across(client: Device, gateway: Device, resource: Resource) -> dict[str, Any]:
    """create_flow on the client's server → authorize_flow on the gateway's → flow_created."""
    await client.send(
        "client", "create_flow", {"resource_id": str(resource.pk), "connected_gateway_ids": []}
    )
    authorize = (await gateway.expect("authorize_flow", "gateway", timeout=10))["payload"]
    assert authorize["resource"]["id"] == str(resource.pk)
    ref = await gateway.send("gateway", "flow_authorized", {"ref": authorize["ref"]})
    assert await gateway.expect("phx_reply", "gateway", ref=ref) == reply("gateway", ref)
    created = (await client.expect("flow_created", "client", timeout=10))["payload"]
    assert created["resource_id"] == str(resource.pk)
    return created


async def test_policy_change_applied_once_per_process_and_told_once_per_client(servers) -> None:
    server_a, server_b = servers
    team = await run_sync(make_team)
    resource = team.resource
    resource_id = str(resource.pk)
    gateway_params = team.world.gateway_params()

    async with Device(server_b) as gw:
        await gw.connect(GATEWAY_PATH, gateway_params, GATEWAY_HEADERS)
        assert await gw.join("gateway") == reply("gateway", 0)
        await gw.expect("init", "gateway", timeout=10)
        gateway = Gateway.objects.get(external_id=gateway_params["external_id"])

        clients: dict[str, list[Device]] = {"A": [], "B": []}
        try:
            for name, server in (("A", server_a), ("B", server_b)):
                for index in range(CLIENTS_PER_SERVER):
                    token = team.tokens[index % len(team.tokens)]
                    clients[name].append(
                        await join_client(server, team, token, f"{name}-laptop-{index}")
                    )
            everyone = clients["A"] + clients["B"]
            assert Client.objects.filter(account=team.world.account).count() == len(everyone)

            # A flow from a client on A through the gateway on B.
            created = await flow_across(clients["A"][0], gw, resource)
            assert created["gateway_id"] == str(gateway.pk)
            await asyncio.sleep(0.5)  # the joins' own refreshes are over
            for device in everyone:
                device.frames.clear()
            gw.frames.clear()

            before = {"A": scrape(server_a), "B": scrape(server_b)}
            assert value(before["A"], "firezone_hubs") == 1
            assert value(before["B"], "firezone_hubs") == 1

            # The policy goes (written in this test process): every client on both servers is
            # told once; the gateway on B rejects the flow's access once.
            await run_sync(delete_policy, team)
            for device in everyone:
                deleted = await device.expect("resource_deleted", "client", timeout=10)
                assert deleted["payload"] == resource_id
            rejected = await gw.expect("reject_access", "gateway", timeout=10)
            assert rejected["payload"]["resource_id"] == resource_id
            await asyncio.sleep(0.5)
            for device in everyone:
                await device.expect_nothing(0.05)
            await gw.expect_nothing(0.05)

            after = {"A": scrape(server_a), "B": scrape(server_b)}
            for name in "AB":
                pushed = delta(
                    after[name],
                    before[name],
                    "firezone_pushes_total",
                    kind="client",
                    event="resource_deleted",
                )
                assert pushed == CLIENTS_PER_SERVER, (name, pushed)
                assert (
                    delta(after[name], before[name], "firezone_hub_reloads_total", reason="gap")
                    == 0
                )
                assert (
                    delta(
                        after[name], before[name], "firezone_hub_reloads_total", reason="reconnect"
                    )
                    == 0
                )
                assert value(after[name], "firezone_hubs") == 1  # one hub for the account

            # Granted again: every client is told once more, and a flow across the two
            # processes completes again.
            await run_sync(grant_again, team)
            for device in everyone:
                created_or_updated = await device.expect(
                    "resource_created_or_updated", "client", timeout=10
                )
                assert created_or_updated["payload"]["id"] == resource_id
            await asyncio.sleep(0.5)
            for device in everyone:
                await device.expect_nothing(0.05)
            created = await flow_across(clients["A"][1], gw, resource)
            assert created["gateway_id"] == str(gateway.pk)
            assert Flow.objects.filter(gateway=gateway, resource=resource).count() == 1
        finally:
            for device in clients["A"] + clients["B"]:
                await device.close()


async def test_each_process_applies_a_change_once(servers) -> None:
    """`firezone_hub_change_apply_seconds` is documented as one observation per batch of
    changes a hub applies (and pushes): one policy change is one batch in each process."""
    server_a, server_b = servers
    team = await run_sync(make_team)
    async with Device(server_a) as on_a, Device(server_b) as on_b:
        for device, name in ((on_a, "a"), (on_b, "b")):
            await device.connect(CLIENT_PATH, team.world.client_params(name=name), CLIENT_HEADERS)
            assert await device.join("client") == reply("client", 0)
            await device.expect("init", "client", timeout=10)
        await asyncio.sleep(0.5)
        before = [scrape(server_a), scrape(server_b)]
        await run_sync(delete_policy, team)
        for device in (on_a, on_b):
            await device.expect("resource_deleted", "client", timeout=10)
        await asyncio.sleep(0.5)
        after = [scrape(server_a), scrape(server_b)]
    applied = [
        delta(a, b, "firezone_hub_change_apply_seconds_count")
        for a, b in zip(after, before, strict=True)
    ]
    assert applied == [1, 1], f"observations of one batch per process (A, B): {applied}"
