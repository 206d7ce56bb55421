"""JumpCloud's directory, read from WorkOS Directory Sync (billing_sync_jobs.md §2.11).

JumpCloud pushes its users and groups to WorkOS over SCIM; we read WorkOS with the official SDK
(`directory_sync.workos`): the one directory of the provider's WorkOS organisation
(`adapter_config.workos_org.id`), its users (`idp_id` — JumpCloud's OIDC `sub` —, `username` as
e-mail, first and last name; no `state` filter, §7 quirk 10) and groups (`G:<directory_group id>`),
100 a page. Memberships come from each user's embedded `groups` (WorkOS is deprecating that field
for new teams; the tuples would then come from `list_users(group=…)` per group).

Errors (§2.7):
* no organisation, or no directory for it → log-only "No WorkOS Directory has been created";
* WorkOS answered with an HTTP error (401, 422, 500 …) → counted "Error connecting to WorkOS"
  (the log has WorkOS's message);
* transport failure or an unexpected answer while finding the directory, or more than one
  directory → counted "Something went wrong fetching directory";
* transport failure while listing users or groups → log-only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

from workos import SyncPage, WorkOSClient, WorkOSError
from workos._errors import APIError
from workos._types import Deserializable
from workos.directory_sync.models import DirectoryUserWithGroups

from accounts.models import AuthProvider
from directory_sync.directory import (
    DirectoryGroup,
    DirectoryIdentity,
    Membership,
    SyncCountedFailure,
    SyncLogOnly,
)
from directory_sync.workos import WorkOSNotConfigured, workos_client

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MSG_NO_DIRECTORY = "No WorkOS Directory has been created"
MSG_WORKOS_ERROR = "Error connecting to WorkOS"
MSG_DIRECTORY_FAILED = "Something went wrong fetching directory"

T = TypeVar("T", bound=Deserializable)


def _api_failure(exc: APIError) -> SyncCountedFailure:
    logger.info("WorkOS returned %s: %s", exc.status_code, exc.message)
    return SyncCountedFailure(MSG_WORKOS_ERROR)


class JumpCloudDirectory:
    def __init__(self, provider: AuthProvider) -> None:
        self.provider = provider
        self._client: WorkOSClient | None = None
        self._directory_id: str | None = None
        # Tuples gathered by a complete `identities()`, reused by `memberships()`.
        self._memberships: list[Membership] | None = None

    # --- the Directory protocol -----------------------------------------------------------------

    def identities(self) -> Iterator[DirectoryIdentity]:
        tuples: list[Membership] = []
        for user in self._users():
            tuples.extend(_user_memberships(user))
            name = f"{user.first_name or ''} {user.last_name or ''}".strip()
            yield DirectoryIdentity(provider_identifier=user.idp_id, name=name, email=user.username)
        self._memberships = tuples

    def groups(self) -> Iterator[DirectoryGroup]:
        directory = self._directory()
        client = self._workos()
        pages = self._listing(
            lambda: client.directory_sync.list_groups(directory=directory, limit=PAGE_SIZE)
        )
        for group in pages:
            yield DirectoryGroup(provider_identifier=f"G:{group.id}", name=f"Group:{group.name}")

    def memberships(self) -> Iterator[Membership]:
        if self._memberships is not None:
            yield from self._memberships
            return
        for user in self._users():
            yield from _user_memberships(user)

    # --- WorkOS ---------------------------------------------------------------------------------

    def _workos(self) -> WorkOSClient:
        if self._client is None:
            try:
                self._client = workos_client()
            except WorkOSNotConfigured as exc:
                raise SyncLogOnly(exc.message) from exc
        return self._client

    def _directory(self) -> str:
        """The id of the organisation's one directory (looked up once per sync)."""
        if self._directory_id is not None:
            return self._directory_id
        org = (self.provider.adapter_config or {}).get("workos_org") or {}
        org_id = org.get("id") if isinstance(org, dict) else None
        if not org_id:
            raise SyncLogOnly(MSG_NO_DIRECTORY)
        client = self._workos()
        try:
            directories = client.directory_sync.list_directories(organization_id=str(org_id)).data
        except APIError as exc:
            raise _api_failure(exc) from exc
        except WorkOSError as exc:
            logger.info("WorkOS directory lookup failed: %s", exc)
            raise SyncCountedFailure(MSG_DIRECTORY_FAILED) from exc
        if not directories:
            raise SyncLogOnly(MSG_NO_DIRECTORY)
        if len(directories) > 1:
            logger.info("WorkOS organisation %s has %d directories", org_id, len(directories))
            raise SyncCountedFailure(MSG_DIRECTORY_FAILED)
        self._directory_id = directories[0].id
        return self._directory_id

    def _users(self) -> Iterator[DirectoryUserWithGroups]:
        directory = self._directory()
        client = self._workos()
        return self._listing(
            lambda: client.directory_sync.list_users(directory=directory, limit=PAGE_SIZE)
        )

    def _listing(self, first_page: Callable[[], SyncPage[T]]) -> Iterator[T]:
        """Every item of a paginated listing, a page at a time, with the §2.7 error mapping."""
        try:
            yield from first_page().auto_paging_iter()
        except APIError as exc:
            raise _api_failure(exc) from exc
        except WorkOSError as exc:
            raise SyncLogOnly(f"WorkOS request failed: {exc}") from exc


def _user_memberships(user: DirectoryUserWithGroups) -> list[Membership]:
    return [(f"G:{group.id}", user.idp_id) for group in user.groups or ()]


def directory_for(provider: AuthProvider) -> JumpCloudDirectory:
    return JumpCloudDirectory(provider)
