"""Helpers of the REST API tests: an API-client token and a test client on the API origin."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.test import Client
from django.utils import timezone

from accounts.models import Account, Actor
from accounts.services.tokens import token_create
from accounts.tests.factories import AccountFactory, ActorFactory

if TYPE_CHECKING:  # the stubs' name of what the test client returns (with `.json()`)
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

API_HOST = "localhost:13001"  # settings.API_EXTERNAL_URL in tests


def api_token(
    actor: Actor | None = None,
    *,
    account: Account | None = None,
    expires_at: datetime | None = None,
    type: str = "api_client",
) -> str:
    """The encoded token of a new token row for `actor` (a new API client by default)."""
    if actor is None:
        actor = ActorFactory(account=account or AccountFactory(), api_client=True)
    issued = token_create(
        type=type,
        account=actor.account,
        actor=actor,
        expires_at=expires_at or timezone.now() + timedelta(days=1),
    )
    return issued.encoded


class ApiClient:
    """Django's test client on the API origin, with a bearer token (or none)."""

    def __init__(self, token: str | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.client = Client(HTTP_HOST=API_HOST, headers=headers)

    def get(self, path: str, **params: Any) -> TestResponse:
        return self.client.get(path, params)

    def delete(self, path: str) -> TestResponse:
        return self.client.delete(path)

    def send(self, method: str, path: str, body: Any) -> TestResponse:
        call = getattr(self.client, method.lower())
        raw = body if isinstance(body, str) else json.dumps(body)
        return call(path, data=raw, content_type="application/json")

    def post(self, path: str, body: Any) -> TestResponse:
        return self.send("post", path, body)


def error(reason: str) -> dict[str, Any]:
    return {"error": {"reason": reason}}
