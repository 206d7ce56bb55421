"""The REST API through a real daphne (portal.md §5.1): the API origin is told apart by `Host`
(the live server runs with DEBUG, so its API origin is `localhost:13001`), bearer tokens issued
in the test authenticate in the server, and the portal origin keeps the portal's URLs."""

from __future__ import annotations

import json

import pytest

from accounts.tests.factories import AccountFactory
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
