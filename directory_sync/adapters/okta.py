"""Okta's directory (billing_sync_jobs.md §2.10): users, groups and group members from the
Okta API of the provider's `api_base_url`, with the connecting admin's OAuth access token.

Every list is `GET …?limit=200`, a JSON array per page; the next page is the `link` header with
`rel="next"` (only followed on the same origin, so the token never leaves for another host).
Only `ACTIVE` users and members are kept; groups are all kept (BUILT_IN "Everyone" too).

Each request is preceded by `OKTA_REQUEST_DELAY` seconds of sleep (the original's crude rate
limiting, §7 quirk 15; 0 in tests) and bounded by `OKTA_REQUEST_TIMEOUT`.

Errors (§2.7): a 4xx with a JSON `errorCode`/`errorSummary` → counted
`"<errorCode> => <errorSummary>"` (401 included: Okta never disables the sync); 5xx → counted
`"Okta API is temporarily unavailable"`; 401/403 without that JSON → counted
`"401 - Unauthorized"` / `"403 - Forbidden"` (the original meant these but could not reach them;
its log carried the parsed `WWW-Authenticate` header, ours too); anything else (transport error,
malformed JSON, other statuses) → log-only.

Token (§2.10): `adapter_state.access_token` while it is a JWT with `exp` at least 2 minutes
ahead; otherwise the provider is re-read from the database (it must still be enabled) for the
token the refresh job stored meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.utils import timezone

from accounts.models import AuthProvider
from directory_sync.directory import (
    DirectoryGroup,
    DirectoryIdentity,
    Membership,
    SyncCountedFailure,
    SyncLogOnly,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 200
USERS_CONTENT_TYPE = "application/json; okta-response=omitCredentials,omitCredentialsLinks"
MSG_UNAVAILABLE = "Okta API is temporarily unavailable"
MSG_STATUS = {401: "401 - Unauthorized", 403: "403 - Forbidden"}
TOKEN_MIN_LIFETIME = timedelta(minutes=2)
_AUTH_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')


def jwt_expires_at(token: str) -> int | None:
    """The `exp` claim of a JWT, read without verification; None when it has none or the token
    is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return exp if isinstance(exp, int) and not isinstance(exp, bool) else None


def www_authenticate(value: str) -> dict[str, str]:
    """`Bearer error="invalid_token", error_description="…"` → its parameters."""
    return dict(_AUTH_PARAM.findall(value))


class OktaDirectory:
    def __init__(self, provider: AuthProvider) -> None:
        self.provider = provider
        config = provider.adapter_config or {}
        base = config.get("api_base_url") or f"https://{config.get('okta_account_domain', '')}"
        self.base_url = str(base).rstrip("/")
        self.session = requests.Session()
        # The group ids seen by a complete `groups()`, reused by `memberships()`.
        self._group_ids: list[str] | None = None

    # --- the Directory protocol -----------------------------------------------------------------

    def identities(self) -> Iterator[DirectoryIdentity]:
        headers = {"Content-Type": USERS_CONTENT_TYPE}
        for user in self._list("/api/v1/users", headers):
            if user.get("status") != "ACTIVE":
                continue
            profile = user.get("profile") or {}
            name = f"{profile.get('firstName') or ''} {profile.get('lastName') or ''}".strip()
            yield DirectoryIdentity(
                provider_identifier=str(user["id"]), name=name, email=profile.get("email")
            )

    def groups(self) -> Iterator[DirectoryGroup]:
        seen: list[str] = []
        for group in self._list("/api/v1/groups"):
            profile = group.get("profile") or {}
            seen.append(str(group["id"]))
            yield DirectoryGroup(
                provider_identifier=f"G:{group['id']}", name=f"Group:{profile.get('name') or ''}"
            )
        self._group_ids = seen

    def memberships(self) -> Iterator[Membership]:
        if self._group_ids is None:
            group_ids = [str(group["id"]) for group in self._list("/api/v1/groups")]
        else:
            group_ids = self._group_ids
        for group_id in group_ids:
            for user in self._list(f"/api/v1/groups/{group_id}/users"):
                if user.get("status") == "ACTIVE":
                    yield (f"G:{group_id}", str(user["id"]))

    # --- HTTP -----------------------------------------------------------------------------------

    def _list(self, path: str, headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, one page fetched at a time."""
        url: str | None = f"{self.base_url}{path}?limit={PAGE_SIZE}"
        while url is not None:
            response = self._get(url, headers or {})
            items = self._items(response)
            yield from items
            url = self._next_url(response)

    def _get(self, url: str, headers: dict[str, str]) -> requests.Response:
        delay = float(getattr(settings, "OKTA_REQUEST_DELAY", 1.0))
        if delay > 0:
            time.sleep(delay)
        request_headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {self._access_token()}",
            **headers,
        }
        timeout = float(getattr(settings, "OKTA_REQUEST_TIMEOUT", 30.0))
        try:
            return self.session.get(
                url, headers=request_headers, timeout=timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise SyncLogOnly(f"Okta API request failed: {exc!r}") from exc

    def _items(self, response: requests.Response) -> list[dict[str, Any]]:
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError as exc:
                raise SyncLogOnly(f"Okta API returned invalid JSON: {exc}") from exc
            if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
                raise SyncLogOnly(f"Okta API returned an unexpected body: {response.text[:200]}")
            return body
        if 400 <= status < 500:
            raise self._client_error(response)
        if status >= 500:
            raise SyncCountedFailure(MSG_UNAVAILABLE)
        raise SyncLogOnly(f"Okta API returned {status}: {response.text[:200]}")

    def _client_error(self, response: requests.Response) -> Exception:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("errorCode") and body.get("errorSummary"):
            return SyncCountedFailure(f"{body['errorCode']} => {body['errorSummary']}")
        header = www_authenticate(response.headers.get("WWW-Authenticate", ""))
        if status in MSG_STATUS:
            logger.info("Okta API returned %s: %s", status, header or response.text[:200])
            return SyncCountedFailure(MSG_STATUS[status])
        return SyncLogOnly(f"Okta API returned {status}: {header or response.text[:200]}")

    def _next_url(self, response: requests.Response) -> str | None:
        # requests folds the separate `link` headers (next, self) into `response.links`.
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        url = urljoin(self.base_url + "/", link)
        if _origin(url) != _origin(self.base_url):
            raise SyncLogOnly(f"Okta API sent a next page on another host: {url}")
        return url

    def _access_token(self) -> str:
        state = self.provider.adapter_state or {}
        token = str(state.get("access_token") or "")
        exp = jwt_expires_at(token)
        if exp is not None and exp >= (timezone.now() + TOKEN_MIN_LIFETIME).timestamp():
            return token
        fresh = AuthProvider.objects.filter(pk=self.provider.pk, disabled_at__isnull=True).first()
        if fresh is None:
            raise SyncLogOnly("Okta provider was disabled during the sync")
        self.provider.adapter_state = fresh.adapter_state
        return str((fresh.adapter_state or {}).get("access_token") or "")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def directory_for(provider: AuthProvider) -> OktaDirectory:
    return OktaDirectory(provider)
