"""Google Workspace directory (billing_sync_jobs.md §2.8, §5.2): users, groups and org units of
the Admin SDK Directory API at `settings.GOOGLE_ADMIN_API_BASE`.

Access token: with a service-account key in `adapter_config.service_account_json_key`, a JWT
signed with the key (domain-wide delegation, `sub` = the admin who connected the provider,
`adapter_state.userinfo.sub`) is exchanged at `settings.GOOGLE_TOKEN_ENDPOINT`; without one, the
admin's own OAuth `adapter_state.access_token` (kept fresh by `directory_sync.services.tokens`).
Any failure to get a token is the counted "Failed to fetch access token" — the admin's token is
not used as a fallback when the key exchange fails.

Paging follows `nextPageToken`, sending only the latest `pageToken` (the original appended one
more each page, §7 quirk 9). `fields=` is never sent (Google would then omit `nextPageToken`).
Pages are read lazily; what `memberships()` needs from users and org units (a user's
`orgUnitPath`, the org-unit tree, the group ids) is kept in compact form when `identities()` and
`groups()` were read through first, and fetched again otherwise.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from accounts.models import AuthProvider
from accounts.providers import REQUIRED_SCOPES
from directory_sync.adapters import _http
from directory_sync.directory import (
    DirectoryGroup,
    DirectoryIdentity,
    Membership,
    SyncCountedFailure,
)

logger = logging.getLogger(__name__)

MSG_TOKEN = "Failed to fetch access token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_SECONDS = 3600
PAGE_SIZE = 350
USERS_QUERY = "isSuspended=false isArchived=false"
# openid email profile + the four admin.directory read-only scopes (§2.8).
SCOPES = " ".join(REQUIRED_SCOPES["google_workspace"])
_DIRECTORY = "/admin/directory/v1"


def _api() -> _http.Api:
    return _http.Api("Google API", settings.GOOGLE_ADMIN_API_BASE.rstrip("/"))


@dataclass(frozen=True)
class _OrgUnit:
    id: str
    name: str
    path: str
    parent_id: str | None


def service_account_key(provider: AuthProvider) -> dict[str, Any] | None:
    """The provider's service-account JSON key (stored parsed; pasted text is accepted)."""
    key = (provider.adapter_config or {}).get("service_account_json_key")
    if isinstance(key, str) and key.strip():
        try:
            key = json.loads(key)
        except ValueError:
            return None
    return dict(key) if isinstance(key, Mapping) and key else None


def service_account_assertion(key: Mapping[str, Any], *, subject: str, now: int) -> str:
    """The RS256 JWT of the service-account flow, acting for `subject` (§2.8 step 1)."""
    claims = {
        "iss": key["client_email"],
        "scope": SCOPES,
        "aud": settings.GOOGLE_TOKEN_ENDPOINT,
        "sub": subject,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
    }
    return jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, RSAKey.import_key(key["private_key"]))


def fetch_service_account_token(key: Mapping[str, Any], *, subject: str) -> str:
    """Exchange a signed assertion for an access token; `SyncCountedFailure(MSG_TOKEN)` on any
    failure (the cause is logged)."""
    try:
        assertion = service_account_assertion(key, subject=subject, now=int(time.time()))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        logger.warning("Google service account key unusable: %s", type(exc).__name__)
        raise SyncCountedFailure(MSG_TOKEN) from exc
    try:
        response = requests.post(
            settings.GOOGLE_TOKEN_ENDPOINT,
            data={"grant_type": JWT_BEARER, "assertion": assertion},
            headers={"Accept": "application/json"},
            timeout=_http.timeout(),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        logger.warning("Google token endpoint unreachable: %s", exc)
        raise SyncCountedFailure(MSG_TOKEN) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not 200 <= response.status_code < 300 or not isinstance(token, str) or not token:
        logger.warning(
            "Google token endpoint returned %s: %r", response.status_code, response.text[:500]
        )
        raise SyncCountedFailure(MSG_TOKEN)
    return token


class GoogleWorkspaceDirectory:
    def __init__(self, provider: AuthProvider) -> None:
        self.provider = provider
        self.api = _api()
        self._token: str | None = None
        # Filled when identities() / groups() have been read through.
        self._user_units: dict[str, str] | None = None
        self._org_units: list[_OrgUnit] | None = None
        self._group_ids: list[str] | None = None

    # --- token and pages --------------------------------------------------------------------------

    def access_token(self) -> str:
        if self._token is None:
            key = service_account_key(self.provider)
            state = self.provider.adapter_state or {}
            if key is not None:
                userinfo = state.get("userinfo")
                subject = userinfo.get("sub") if isinstance(userinfo, dict) else None
                if not isinstance(subject, str) or not subject:
                    logger.warning("Google provider %s has no connected admin", self.provider.pk)
                    raise SyncCountedFailure(MSG_TOKEN)
                self._token = fetch_service_account_token(key, subject=subject)
            else:
                token = state.get("access_token")
                if not isinstance(token, str) or not token:
                    raise SyncCountedFailure(MSG_TOKEN)
                self._token = token
        return self._token

    def _items(
        self, path: str, params: dict[str, str], key: str, *, required: bool
    ) -> Iterator[dict[str, Any]]:
        """Every item under `key` of every page, one page in memory at a time."""
        url = self.api.base_url + path
        page_params = {**params, "maxResults": str(PAGE_SIZE)}
        while True:
            body = _http.get_json(self.api, url, token=self.access_token(), params=page_params)
            yield from _http.items(self.api, body, key, required=required)
            next_token = body.get("nextPageToken")
            if not isinstance(next_token, str) or not next_token:
                return
            page_params = {**page_params, "pageToken": next_token}

    def _users(self) -> Iterator[dict[str, Any]]:
        params = {"customer": "my_customer", "showDeleted": "false", "query": USERS_QUERY}
        return self._items(f"{_DIRECTORY}/users", params, "users", required=True)

    def _read_org_units(self) -> Iterator[_OrgUnit]:
        path = f"{_DIRECTORY}/customer/my_customer/orgunits"
        for unit in self._items(path, {"type": "ALL"}, "organizationUnits", required=False):
            parent = unit.get("parentOrgUnitId")
            yield _OrgUnit(
                id=_http.field(self.api, unit, "orgUnitId"),
                name=str(unit.get("name") or unit.get("orgUnitPath") or ""),
                path=_http.field(self.api, unit, "orgUnitPath"),
                parent_id=parent if isinstance(parent, str) and parent else None,
            )

    def _groups(self) -> Iterator[dict[str, Any]]:
        params = {"customer": "my_customer"}
        return self._items(f"{_DIRECTORY}/groups", params, "groups", required=True)

    def _members(self, group_id: str) -> Iterator[str]:
        """Active user members of a group, nested groups flattened by Google."""
        path = f"{_DIRECTORY}/groups/{quote(group_id, safe='')}/members"
        params = {"includeDerivedMembership": "true"}
        for member in self._items(path, params, "members", required=False):
            if member.get("type") == "USER" and member.get("status") == "ACTIVE":
                yield _http.field(self.api, member, "id")

    # --- Directory --------------------------------------------------------------------------------

    def identities(self) -> Iterator[DirectoryIdentity]:
        units: dict[str, str] = {}
        for user in self._users():
            user_id = _http.field(self.api, user, "id")
            email = user.get("primaryEmail")
            raw_name = user.get("name")
            name: dict[str, Any] = raw_name if isinstance(raw_name, dict) else {}
            full_name = name.get("fullName") or " ".join(
                str(part) for part in (name.get("givenName"), name.get("familyName")) if part
            )
            units[user_id] = str(user.get("orgUnitPath") or "/")
            yield DirectoryIdentity(
                provider_identifier=user_id,
                name=str(full_name or email or user_id),
                email=email if isinstance(email, str) and email else None,
            )
        if not units:
            logger.warning("Google provider %s: the directory has no users", self.provider.pk)
        self._user_units = units

    def groups(self) -> Iterator[DirectoryGroup]:
        group_ids: list[str] = []
        for group in self._groups():
            group_id = _http.field(self.api, group, "id")
            group_ids.append(group_id)
            yield DirectoryGroup(f"G:{group_id}", f"Group:{group.get('name') or group_id}")
        org_units: list[_OrgUnit] = []
        for unit in self._read_org_units():
            org_units.append(unit)
            yield DirectoryGroup(f"OU:{unit.id}", f"OrgUnit:{unit.name}")
        self._group_ids, self._org_units = group_ids, org_units

    def memberships(self) -> Iterator[Membership]:
        group_ids = self._group_ids
        if group_ids is None:
            group_ids = [_http.field(self.api, g, "id") for g in self._groups()]
        for group_id in group_ids:
            for user_id in self._members(group_id):
                yield (f"G:{group_id}", user_id)
        org_units = self._org_units if self._org_units is not None else list(self._read_org_units())
        if not org_units:
            return
        user_units = self._user_units
        if user_units is None:
            user_units = {
                _http.field(self.api, u, "id"): str(u.get("orgUnitPath") or "/")
                for u in self._users()
            }
        by_path = {unit.path: unit for unit in org_units}
        by_id = {unit.id: unit for unit in org_units}
        for user_id, path in user_units.items():
            unit = by_path.get(path)
            seen: set[str] = set()
            # The user's org unit and its ancestors (the root "/" is never listed).
            while unit is not None and unit.id not in seen:
                seen.add(unit.id)
                yield (f"OU:{unit.id}", user_id)
                unit = by_id.get(unit.parent_id) if unit.parent_id else None


def directory_for(provider: AuthProvider) -> GoogleWorkspaceDirectory:
    return GoogleWorkspaceDirectory(provider)
