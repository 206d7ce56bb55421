"""The REST API's rate limit across two daphne processes (portal.md §5.1): the token bucket of
an account lives in Redis, so requests spread over servers A and B share it — a burst of 20,
then the 21st request is 429 with `Retry-After: 1`, whichever server answers it.

(The single-process burst is firezone/tests/test_api.py::test_the_21st_burst_request_is_429.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.tests.factories import AccountFactory
from tests.api import API_HOST, api_token, error
from tests.live import LiveServer, run_daphnes, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# 200 tokens at 10 a request: a burst of 20. Almost no refill (10 tokens take 10^4 s), so a
# slow machine's burst never earns a 21st request.
CAPACITY = 200
BURST = CAPACITY // 10


@pytest.fixture(scope="module")
def two_daphnes(django_db_setup: Any, django_db_blocker: Any) -> Iterator[tuple[LiveServer, ...]]:
    """Servers A and B with the test's bucket (overrides tests.live.two_daphnes here)."""
    yield from run_daphnes(django_db_blocker, API_CAPACITY=str(CAPACITY), API_REFILL_RATE="0.001")


async def test_the_21st_request_over_two_servers_is_429(
    servers: tuple[LiveServer, ...],
) -> None:
    account = await run_sync(AccountFactory)
    token = await run_sync(api_token, account=account)
    bearer = {"Host": API_HOST, "Authorization": f"Bearer {token}"}

    # Alternate A, B, A, B, ...: each server alone answers only 10 of the 20.
    statuses = []
    for i in range(BURST):
        status, _, body = await run_sync(servers[i % 2].http, "GET", "/account", bearer)
        statuses.append((i, status, body if status != 200 else b""))
    assert statuses == [(i, 200, b"") for i in range(BURST)]
    for server in servers:
        assert server.log().count("GET /account") == BURST // 2

    # The 21st, on A, and one more on B: the bucket is empty on both.
    for server in servers:
        status, headers, body = await run_sync(server.http, "GET", "/account", bearer)
        assert status == 429, body
        assert headers["retry-after"] == "1"
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == error("Too Many Requests")

    # Another account has its own bucket on either server.
    other = await run_sync(api_token)
    for server in servers:
        other_bearer = {"Host": API_HOST, "Authorization": f"Bearer {other}"}
        status, _, body = await run_sync(server.http, "GET", "/account", other_bearer)
        assert status == 200, body
