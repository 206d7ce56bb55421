"""Two daphne processes on one database and one Redis: a client on server A and a gateway on
server B set up a flow and both see a policy change.

Everything that crosses sockets goes through Redis (presence, the channel layer, the change
feed), so nothing may depend on which process a device landed on.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from accounts.tests.factories import GroupFactory, MembershipFactory, subject_for
from gateways.models import Client, Gateway
from gateways.tests.sockets import CLIENT_PATH, GATEWAY_PATH, GATEWAY_UA, World, make_world
from resources.models import Flow, Policy, Resource
from resources.services.policies import policy_delete
from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory
from tests.live import (
    DEVICE_HEADERS,
    Device,
    reply,
    run_sync,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENT_HEADERS = {**DEVICE_HEADERS, "User-Agent": "iOS/17.5 (iPhone) connlib/1.4.0"}
GATEWAY_HEADERS = {"User-Agent": GATEWAY_UA, "X-Forwarded-For": "203.0.113.80"}


@dataclass
class Granted:
    world: World
    resource: Resource
    policy: Policy


def grant(world: World) -> Granted:
    """A DNS resource of site S, granted to the world's user by one group policy."""
    group = GroupFactory(account=world.account)
    MembershipFactory(group=group, actor=world.actor, account=world.account)
    resource = ResourceFactory(account=world.account, address="app.example.com")
    ConnectionFactory(resource=resource, gateway_group=world.site, account=world.account)
    policy = PolicyFactory(account=world.account, actor_group=group, resource=resource)
    return Granted(world, resource, policy)


def delete_policy(granted: Granted) -> None:
    policy_delete(subject=subject_for(granted.world.actor), policy=granted.policy.pk)


async def test_flow_and_policy_change_across_two_server_processes(servers) -> None:
    server_a, server_b = servers
    granted = await run_sync(lambda: grant(make_world()))
    world, resource = granted.world, granted.resource
    client_params = world.client_params()
    gateway_params = world.gateway_params()

    async with Device(server_b) as gw, Device(server_a) as cl:
        # The gateway on B comes online first, then the client joins on A.
        await gw.connect(GATEWAY_PATH, gateway_params, GATEWAY_HEADERS)
        assert await gw.join("gateway") == reply("gateway", 0)
        gw_init = await gw.expect("init", "gateway", timeout=10)
        assert gw_init["payload"]["authorizations"] == []
        # ORM reads on the test's own connection (closed by the fixture), not aget's thread.
        gateway = Gateway.objects.get(external_id=gateway_params["external_id"])

        await cl.connect(CLIENT_PATH, client_params, CLIENT_HEADERS)
        assert await cl.join("client") == reply("client", 0)
        cl_init = await cl.expect("init", "client", timeout=10)
        assert [r["id"] for r in cl_init["payload"]["resources"]] == [str(resource.pk)]
        client = Client.objects.get(external_id=client_params["external_id"])

        # Each device really landed on its own server.
        assert "WSCONNECT /gateway/websocket" in server_b.log()
        assert "WSCONNECT /gateway/websocket" not in server_a.log()
        assert "WSCONNECT /client/websocket" in server_a.log()

        # create_flow on A → authorize_flow on B → flow_authorized on B → flow_created on A.
        await cl.send(
            "client",
            "create_flow",
            {"resource_id": str(resource.pk), "connected_gateway_ids": []},
        )
        authorize = (await gw.expect("authorize_flow", "gateway", timeout=10))["payload"]
        assert authorize["resource"]["id"] == str(resource.pk)
        assert authorize["client"]["id"] == str(client.pk)
        assert authorize["client"]["public_key"] == client_params["public_key"]
        ref = await gw.send("gateway", "flow_authorized", {"ref": authorize["ref"]})
        assert await gw.expect("phx_reply", "gateway", ref=ref) == reply("gateway", ref)

        created = (await cl.expect("flow_created", "client", timeout=10))["payload"]
        assert created["resource_id"] == str(resource.pk)
        assert created["gateway_id"] == str(gateway.pk)
        assert created["gateway_group_id"] == str(world.site.pk)
        assert created["gateway_public_key"] == gateway_params["public_key"]
        assert created["preshared_key"] == authorize["client"]["preshared_key"]
        assert created["client_ice_credentials"] == authorize["client_ice_credentials"]
        assert created["gateway_ice_credentials"] == authorize["gateway_ice_credentials"]
        assert Flow.objects.filter(client=client, gateway=gateway).count() == 1

        # A policy deletion (in this test process) reaches both servers' sockets.
        await run_sync(delete_policy, granted)
        deleted = await cl.expect("resource_deleted", "client", timeout=10)
        assert deleted["payload"] == str(resource.pk)
        rejected = await gw.expect("reject_access", "gateway", timeout=10)
        assert rejected["payload"] == {"client_id": str(client.pk), "resource_id": str(resource.pk)}
        await cl.expect_nothing(0.3)
        await gw.expect_nothing(0.3)
