"""Microsoft Entra ID directory (billing_sync_jobs.md §2.9, §5.3): users, groups and transitive
group members from Microsoft Graph at `settings.MS_GRAPH_API_BASE`, with the delegated token of
the admin who connected the provider (`adapter_state.access_token`, kept fresh by
`directory_sync.services.tokens`).

Pages are `{"value": [...], "@odata.nextLink": "<absolute URL>"}`; the next link is followed
verbatim, but only on the Graph origin we were configured with (the bearer token goes nowhere
else — a link elsewhere is log-only). Disabled accounts are filtered by Graph (`$filter`) for
users and by us for group members. The group ids `memberships()` needs are kept when `groups()`
was read through first, and fetched again otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings

from accounts.models import AuthProvider
from directory_sync.adapters import _http
from directory_sync.directory import (
    DirectoryGroup,
    DirectoryIdentity,
    Membership,
    SyncCountedFailure,
    SyncLogOnly,
)

MSG_TOKEN = "Failed to fetch access token"
PAGE_SIZE = "999"
USERS_SELECT = "id,accountEnabled,displayName,givenName,surname,mail,userPrincipalName"


def _api() -> _http.Api:
    return _http.Api("Microsoft Graph API", settings.MS_GRAPH_API_BASE.rstrip("/"))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class MicrosoftEntraDirectory:
    def __init__(self, provider: AuthProvider) -> None:
        self.provider = provider
        self.api = _api()
        self._group_ids: list[str] | None = None

    def access_token(self) -> str:
        token = (self.provider.adapter_state or {}).get("access_token")
        if not isinstance(token, str) or not token:
            raise SyncCountedFailure(MSG_TOKEN)
        return token

    def _items(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Every item of every page, one page in memory at a time."""
        url: str = self.api.base_url + path
        page_params: dict[str, str] | None = params
        while True:
            body = _http.get_json(self.api, url, token=self.access_token(), params=page_params)
            yield from _http.items(self.api, body, "value", required=True)
            next_link = body.get("@odata.nextLink")
            if next_link is None:
                return
            if not isinstance(next_link, str) or _origin(next_link) != _origin(url):
                raise SyncLogOnly(f"{self.api.name} returned a foreign next link: {next_link!r}")
            url, page_params = next_link, None

    def _groups(self) -> Iterator[dict[str, Any]]:
        return self._items("/v1.0/groups", {"$select": "id,displayName", "$top": PAGE_SIZE})

    def _members(self, group_id: str) -> Iterator[str]:
        path = f"/v1.0/groups/{quote(group_id, safe='')}/transitiveMembers/microsoft.graph.user"
        for member in self._items(path, {"$select": "id,accountEnabled", "$top": PAGE_SIZE}):
            if member.get("accountEnabled") is True:
                yield _http.field(self.api, member, "id")

    def identities(self) -> Iterator[DirectoryIdentity]:
        params = {
            "$select": USERS_SELECT,
            "$filter": "accountEnabled eq true",
            "$top": PAGE_SIZE,
        }
        for user in self._items("/v1.0/users", params):
            user_id = _http.field(self.api, user, "id")
            email = user.get("userPrincipalName")
            name = user.get("displayName") or " ".join(
                str(part) for part in (user.get("givenName"), user.get("surname")) if part
            )
            yield DirectoryIdentity(
                provider_identifier=user_id,
                name=str(name or email or user_id),
                email=email if isinstance(email, str) and email else None,
            )

    def groups(self) -> Iterator[DirectoryGroup]:
        group_ids: list[str] = []
        for group in self._groups():
            group_id = _http.field(self.api, group, "id")
            group_ids.append(group_id)
            yield DirectoryGroup(f"G:{group_id}", f"Group:{group.get('displayName') or group_id}")
        self._group_ids = group_ids

    def memberships(self) -> Iterator[Membership]:
        group_ids = self._group_ids
        if group_ids is None:
            group_ids = [_http.field(self.api, g, "id") for g in self._groups()]
        for group_id in group_ids:
            for user_id in self._members(group_id):
                yield (f"G:{group_id}", user_id)


def directory_for(provider: AuthProvider) -> MicrosoftEntraDirectory:
    return MicrosoftEntraDirectory(provider)
