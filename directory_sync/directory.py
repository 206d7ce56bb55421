"""What every directory adapter hands to the sync (billing_sync_jobs.md §2.3): identities,
groups and membership tuples, read page by page from the IdP, and the error classes of §2.7.

An adapter is a function `directory_for(provider) -> Directory` registered in
`directory_sync.adapters.DIRECTORIES` under the provider's adapter name. A `Directory` reads
lazily: each iterator fetches the next page only when the previous one is consumed, so memory
is bounded by a page plus the compact tuples the sync keeps.

Errors (§2.7), raised by the iterators or by `directory_for`:
* `SyncUnauthorized(message)` — the IdP refused our credentials for good (Google/Entra 401):
  counted, the sync is disabled until the admin reconnects, the admins are e-mailed at once;
* `SyncCountedFailure(message)` — the admin can see and act on it (the IdP's message, "…API is
  temporarily unavailable", "Failed to fetch access token"): counted, e-mailed after 10 in a row;
* `SyncLogOnly(log_message)` — nothing the admin can act on (transport error, malformed JSON):
  logged only, retried later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DirectoryIdentity:
    """One upstream user: `provider_identifier` is the OIDC claim its sign-in uses (`sub`, `oid`
    for Entra); `email` goes to `provider_state.userinfo.email` and the identity's email."""

    provider_identifier: str
    name: str
    email: str | None


@dataclass(frozen=True)
class DirectoryGroup:
    """One upstream group (or Google org unit): `G:<id>` / `Group:<name>`, `OU:<id>` /
    `OrgUnit:<name>` (§2.3's table)."""

    provider_identifier: str
    name: str


# (group provider_identifier, identity provider_identifier)
Membership = tuple[str, str]


class Directory(Protocol):
    def identities(self) -> Iterator[DirectoryIdentity]: ...

    def groups(self) -> Iterator[DirectoryGroup]: ...

    def memberships(self) -> Iterator[Membership]: ...


class SyncFailed(Exception):
    """Base of the §2.7 classes: `message` is what the provider page and e-mail show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SyncUnauthorized(SyncFailed):
    """Credentials refused (Google/Entra 401): disable the sync, e-mail the admins now."""


class SyncCountedFailure(SyncFailed):
    """A failure the admin should see: counted, shown, e-mailed after a streak."""


class SyncLogOnly(SyncFailed):
    """A failure only the logs need: no counter, no e-mail; `message` is the log text."""
