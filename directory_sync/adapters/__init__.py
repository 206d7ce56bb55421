"""Directory adapters by provider adapter name (billing_sync_jobs.md §2.8 to §2.12): each maps an
`AuthProvider` to a `directory_sync.directory.Directory`. One module per IdP; add yours here."""

from __future__ import annotations

from collections.abc import Callable

from accounts.models import AuthProvider
from directory_sync.adapters import entra, google, jumpcloud, mock, okta
from directory_sync.directory import Directory

DirectoryFactory = Callable[[AuthProvider], Directory]

DIRECTORIES: dict[str, DirectoryFactory] = {
    "google_workspace": google.directory_for,
    "microsoft_entra": entra.directory_for,
    "okta": okta.directory_for,
    "jumpcloud": jumpcloud.directory_for,
    "mock": mock.directory_for,
}
