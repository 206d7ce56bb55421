"""The REST API through a real daphne (portal.md §5.1): the API origin is told apart by `Host`
(the live server runs with DEBUG, so its API origin is `localhost:13001`), bearer tokens issued
in the test authenticate in the server, and the portal origin keeps the portal's URLs. A policy
made and deleted through the API reaches a connected client's socket (protocol.md §5.6)."""

from __future__ import annotations

import json

import pytest

from accounts.models import Actor, Token
from accounts.tests.factories import AccountFactory
from firezone.models import ChangeLog
from gateways.tests._sockets_client import client_world, join_client, push, view
from resources.models import Policy
from resources.tests.factories import ResourceFactory
from tests.api import API_HOST, api_token
from tests.live import LiveServer, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def test_the_api_origin_through_daphne(live: LiveServer) -> None:
    account = await run_sync(AccountFactory)
    resource = await run_sync(ResourceFactory, account=account, name="Web")
    token = await run_sync(api_token, account=account)
    bearer = {"Host": API_HOST, "Authorization": f"Bearer {token}"}

    status, headers, body = await run_sync(live.http, "GET", "/resources", bearer)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    listed = json.loads(body)
    assert [r["id"] for r in listed["data"]] == [str(resource.pk)]
    assert listed["metadata"]["count"] == 1

    status, _, body = await run_sync(live.http, "GET", "/account", {"Host": API_HOST})
    assert (status, json.loads(body)) == (401, {"error": {"reason": "Unauthorized"}})

    status, _, body = await run_sync(live.http, "GET", "/openapi", {"Host": API_HOST})
    assert status == 200 and b"/resources" in body

    # The portal's origin: `/account` is no API route there.
    portal = {"Host": "localhost:8000", "Authorization": f"Bearer {token}"}
    status, _, body = await run_sync(live.http, "GET", "/account", portal)
    assert b'"data"' not in body


async def test_a_policy_made_and_deleted_through_the_api_reaches_the_client(
    live: LiveServer,
) -> None:
    # §7 common setup without grants: Rdns is connected to site S (with gateway GW), so a
    # policy granting it to G1 makes it connectable for the client (protocol.md §5.2).
    cw = await run_sync(client_world, grant_all=False)
    token = await run_sync(api_token, account=cw.account)
    api_client = Actor.objects.get(account=cw.account, type=Actor.Type.API_CLIENT)
    token_row = Token.objects.get(actor=api_client)
    bearer = {"Host": API_HOST, "Authorization": f"Bearer {token}"}

    joined = await join_client(live, cw)
    device = joined.device
    async with device:
        assert str(cw.rdns.pk) not in [r["id"] for r in joined.init["payload"]["resources"]]

        body = {"policy": {"actor_group_id": str(cw.g1.pk), "resource_id": str(cw.rdns.pk)}}
        json_body = {**bearer, "Content-Type": "application/json"}
        status, headers, raw = await run_sync(
            live.http, "POST", "/policies", json_body, json.dumps(body).encode()
        )
        assert status == 201, raw
        created = json.loads(raw)["data"]
        assert created["resource_id"] == str(cw.rdns.pk)
        assert headers["location"] == f"/policies/{created['id']}"

        pushed = await device.expect("resource_created_or_updated", "client", timeout=10)
        assert pushed == push("resource_created_or_updated", view(cw.rdns, cw.site))
        await device.expect_nothing(0.3)

        # The change log names the API client (and its token) as who made the policy.
        logged = ChangeLog.objects.get(table="policies", op="insert", data__id=created["id"])
        assert logged.subject is not None
        assert {
            k: v for k, v in logged.subject.items() if k not in ("remote_ip", "user_agent")
        } == {
            "kind": "api_client",
            "actor_id": str(api_client.pk),
            "actor_name": api_client.name,
            "actor_type": "api_client",
            "identity_id": None,
            "token_id": str(token_row.pk),
            "context": "api_client",
        }
        assert {"remote_ip", "user_agent"} <= logged.subject.keys()  # where from (issue 18)

        status, _, raw = await run_sync(live.http, "DELETE", f"/policies/{created['id']}", bearer)
        assert status == 200, raw
        assert json.loads(raw)["data"]["id"] == created["id"]
        deleted = await device.expect("resource_deleted", "client", timeout=10)
        assert deleted == push("resource_deleted", str(cw.rdns.pk))
        await device.expect_nothing(0.3)
        assert not Policy.objects.filter(pk=created["id"]).exists()
        logged = ChangeLog.objects.get(table="policies", op="delete", old_data__id=created["id"])
        assert logged.subject is not None and logged.subject["actor_id"] == str(api_client.pk)
