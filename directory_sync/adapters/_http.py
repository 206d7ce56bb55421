"""JSON over HTTPS with a bearer token, and the §2.7 error classes of the Google and Microsoft
Graph APIs (billing_sync_jobs.md §2.7): both answer errors as `{"error": {"message": m, …}}`.

* 401 with that shape → `SyncUnauthorized(m)` (the sync is disabled until the admin reconnects);
* any other 4xx with that shape → `SyncCountedFailure(m)`;
* 5xx → `SyncCountedFailure("<API> is temporarily unavailable")`;
* anything else — a transport error or timeout, a redirect, a 2xx other than 200, a body that is
  not a JSON object, a 4xx without that shape — `SyncLogOnly` (the admin can do nothing about it).

Every request has `settings.DIRECTORY_SYNC_HTTP_TIMEOUT`; redirects are not followed (a bearer
token is never sent to a host we did not choose).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings

from directory_sync.directory import SyncCountedFailure, SyncLogOnly, SyncUnauthorized


@dataclass(frozen=True)
class Api:
    """One IdP API: its display name (messages) and base URL."""

    name: str
    base_url: str

    @property
    def unavailable(self) -> str:
        return f"{self.name} is temporarily unavailable"


def timeout() -> Any:
    return settings.DIRECTORY_SYNC_HTTP_TIMEOUT


def error_message(response: requests.Response) -> str | None:
    """`error.message` of a Google / Graph error body, if it has that shape."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else None


def get_json(api: Api, url: str, *, token: str, params: Any = None) -> dict[str, Any]:
    """GET `url` (absolute, under `api.base_url`) and return its JSON object, or raise one of the
    §2.7 classes."""
    try:
        response = requests.get(
            url,
            params=params,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout(),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise SyncLogOnly(f"{api.name} request failed: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if status >= 500:
        raise SyncCountedFailure(api.unavailable)
    if 400 <= status < 500:
        message = error_message(response)
        if message is None:
            raise SyncLogOnly(f"{api.name} returned {status}: {response.text[:500]!r}")
        if status == 401:
            raise SyncUnauthorized(message)
        raise SyncCountedFailure(message)
    if status != 200:
        raise SyncLogOnly(f"{api.name} returned unexpected status {status}")
    try:
        body = response.json()
    except ValueError as exc:
        raise SyncLogOnly(f"{api.name} returned invalid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise SyncLogOnly(f"{api.name} returned {type(body).__name__}, not a JSON object")
    return body


def items(api: Api, body: dict[str, Any], key: str, *, required: bool) -> list[dict[str, Any]]:
    """The list under `key`: a missing key is an empty list unless `required`; a value that is
    not a list of objects is log-only."""
    if key not in body:
        if required:
            raise SyncLogOnly(f"{api.name} response has no {key!r} key")
        return []
    value = body[key]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise SyncLogOnly(f"{api.name} response {key!r} is not a list of objects")
    return value


def field(api: Api, item: dict[str, Any], key: str) -> str:
    """A required non-empty text field of an item (an id), else log-only."""
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise SyncLogOnly(f"{api.name} returned an item without {key!r}")
    return value
