"""A fake directory for the run tests: what it returns (or raises) is set per test, and it
records how often it was read. Registered in `DIRECTORIES` under the provider's adapter with
`monkeypatch.setitem` (test wiring: the registry is how the sync finds adapters)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from accounts.models import AuthProvider
from directory_sync.directory import DirectoryGroup, DirectoryIdentity, Membership, SyncFailed


@dataclass
class FakeDirectory:
    identities_list: list[DirectoryIdentity] = field(
        default_factory=lambda: [DirectoryIdentity("U1", "Ann Example", "ann@example.com")]
    )
    groups_list: list[DirectoryGroup] = field(
        default_factory=lambda: [DirectoryGroup("G:1", "Group:Engineering")]
    )
    memberships_list: list[Membership] = field(default_factory=lambda: [("G:1", "U1")])
    error: SyncFailed | Exception | None = None
    reads: int = 0
    # Set → the read waits for `release` (the lock test keeps one run inside its fetch).
    hold: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)

    def __call__(self, provider: AuthProvider) -> FakeDirectory:
        return self

    def identities(self) -> Iterator[DirectoryIdentity]:
        self.reads += 1
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(10), "the test never released the fake directory"
        if self.error is not None:
            raise self.error
        yield from self.identities_list

    def groups(self) -> Iterator[DirectoryGroup]:
        yield from self.groups_list

    def memberships(self) -> Iterator[Membership]:
        yield from self.memberships_list
