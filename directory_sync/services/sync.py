"""STUB — placeholder for the real `provider_sync_apply` (§2.4-2.6), written on another branch.

Only here so `directory_sync.services.runs` imports and its tests run on the `sync-runs`
branch; when merging, take the real module and drop this file. It writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accounts.models import AuthProvider
from directory_sync.directory import DirectoryGroup, DirectoryIdentity, Membership


@dataclass(frozen=True)
class SyncApplyResult:
    identities: int
    groups: int
    memberships: int


def provider_sync_apply(
    *,
    provider: AuthProvider,
    identities: Sequence[DirectoryIdentity],
    groups: Sequence[DirectoryGroup],
    memberships: Sequence[Membership],
) -> SyncApplyResult:
    return SyncApplyResult(len(identities), len(groups), len(memberships))
