"""NUL bytes and lone surrogates in HTTP requests (issue 17): permanent bad input PostgreSQL text
cannot store, refused with a 400 before any view or service sees it — on the API origin with
the API's JSON error body (portal.md §5.1), on the portal with its 400 page — never a 500."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import Actor
from accounts.tests.factories import AccountFactory, ActorFactory
from firezone.api.parsers import unstorable_text
from tests.api import API_HOST, ApiClient, api_token

pytestmark = pytest.mark.django_db

BAD_REQUEST = {"error": {"reason": "Bad Request"}}


@pytest.fixture
def api() -> ApiClient:
    actor = ActorFactory(account=AccountFactory(), api_client=True)
    return ApiClient(api_token(actor))


@pytest.mark.parametrize(
    "body",
    [
        '{"actor": {"name": "a\\u0000b", "type": "account_user"}}',
        '{"actor": {"name": "ok", "type": "account_user", "x\\u0000": 1}}',
        '{"actor": {"name": "\\ud800", "type": "account_user"}}',
        '{"actor": {"name": ["\\u0000"], "type": "account_user"}}',
    ],
)
def test_api_body_with_nul_or_lone_surrogate_is_400(api: ApiClient, body: str) -> None:
    before = Actor.objects.count()
    response = api.post("/actors", body)
    assert response.status_code == 400
    assert response.json() == BAD_REQUEST
    assert Actor.objects.count() == before


def test_api_query_with_nul_is_the_api_400(api: ApiClient) -> None:
    response = api.get("/actors", limit="1\x00")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == BAD_REQUEST


def test_api_header_with_nul_is_the_api_400() -> None:
    client = Client(HTTP_HOST=API_HOST, HTTP_USER_AGENT="curl\x00")
    response = client.get("/actors")
    assert response.status_code == 400
    assert response.json() == BAD_REQUEST


def test_portal_header_with_nul_is_the_portal_400() -> None:
    response = Client(HTTP_USER_AGENT="Mozilla\x00").get("/")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_unstorable_text_walks_keys_values_and_deep_nesting() -> None:
    deep: object = "\x00"
    for _ in range(10_000):
        deep = [deep]
    assert unstorable_text(deep)
    assert unstorable_text({"a\x00": 1})
    assert unstorable_text(json.loads('["\\udfff"]'))
    assert not unstorable_text({"name": "ünïcode ✓", "n": [1, 2.5, None, True]})


def test_the_middleware_knows_the_api_url_conf() -> None:
    from firezone import middleware
    from firezone.api.middleware import API_URLCONF

    assert middleware.API_URLCONF == API_URLCONF
