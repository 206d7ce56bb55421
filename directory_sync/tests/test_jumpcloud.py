"""The JumpCloud directory through WorkOS (billing_sync_jobs.md §2.11, §2.7, §5.5) with the
official SDK against a fake WorkOS on a local port (directory_sync/tests/fakes.py)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuthProvider
from accounts.tests.factories import ProviderFactory
from directory_sync.adapters import DIRECTORIES
from directory_sync.directory import (
    DirectoryGroup,
    DirectoryIdentity,
    SyncCountedFailure,
    SyncLogOnly,
)
from directory_sync.tests.fakes import (  # noqa: F401
    WORKOS_API_KEY,
    WorkOSFake,
    fixture,
    workos_fixture,
)

pytestmark = pytest.mark.django_db

DIRECTORY = "directory_01HZ3K9Q5V7S8T9U0W1X2Y3Z4A"
ALL = "G:directory_group_01HZ3KALL00000000000000000"
ENG = "G:directory_group_01HZ3KENG00000000000000000"
JOHN, JANE = "6540a1b2c3d4e5f600000001", "6540a1b2c3d4e5f600000002"


def jumpcloud_provider(workos_org: dict[str, Any] | None = None) -> AuthProvider:
    return ProviderFactory(
        adapter=AuthProvider.Adapter.JUMPCLOUD,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config={"client_id": "jc", "client_secret": "s", "workos_org": workos_org or {}},
        adapter_state={"access_token": "a"},
    )


def test_users_groups_and_memberships(workos: WorkOSFake) -> None:
    org = workos.add_organization()
    directory = DIRECTORIES["jumpcloud"](jumpcloud_provider(org))
    assert list(directory.identities()) == [
        DirectoryIdentity(JOHN, "John Doe", "jdoe@example.com"),
        DirectoryIdentity(JANE, "Jane Smith", "jsmith@example.com"),
    ]
    assert list(directory.groups()) == [
        DirectoryGroup(ALL, "Group:All"),
        DirectoryGroup(ENG, "Group:Engineering"),
    ]
    assert list(directory.memberships()) == [(ALL, JOHN), (ENG, JOHN), (ALL, JANE)]
    # The directory is looked up once; users are paged with the cursor; memberships came with
    # the users.
    assert [(r.path, r.query.get("directory"), r.query.get("after")) for r in workos.requests] == [
        ("/directories", None, None),
        ("/directory_users", DIRECTORY, None),
        ("/directory_users", DIRECTORY, "directory_user_01HZ3KJDOE000000000000000"),
        ("/directory_groups", DIRECTORY, None),
    ]
    assert workos.requests[0].query["organization_id"] == org["id"]
    assert {r.query.get("limit") for r in workos.requests[1:]} == {"100"}
    assert {r.headers["Authorization"] for r in workos.requests} == {f"Bearer {WORKOS_API_KEY}"}


def test_memberships_alone_list_the_users(workos: WorkOSFake) -> None:
    directory = DIRECTORIES["jumpcloud"](jumpcloud_provider(workos.add_organization()))
    assert list(directory.memberships()) == [(ALL, JOHN), (ENG, JOHN), (ALL, JANE)]


def test_without_an_organisation_nothing_is_asked(workos: WorkOSFake) -> None:
    with pytest.raises(SyncLogOnly, match="No WorkOS Directory has been created"):
        list(DIRECTORIES["jumpcloud"](jumpcloud_provider()).identities())
    assert workos.requests == []


def test_without_a_directory(workos: WorkOSFake) -> None:
    org = workos.add_organization()
    workos.directories[org["id"]] = fixture("workos_directories_empty")["data"]
    with pytest.raises(SyncLogOnly, match="No WorkOS Directory has been created"):
        list(DIRECTORIES["jumpcloud"](jumpcloud_provider(org)).groups())


def test_more_than_one_directory(workos: WorkOSFake) -> None:
    org = workos.add_organization()
    workos.directories[org["id"]] *= 2
    with pytest.raises(SyncCountedFailure) as raised:
        list(DIRECTORIES["jumpcloud"](jumpcloud_provider(org)).groups())
    assert raised.value.message == "Something went wrong fetching directory"


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/directories", 401, fixture("workos_error_401")),
        ("/directories", 500, {}),
        ("/directory_users", 500, {}),
        ("/directory_groups", 422, fixture("workos_error_422")),
    ],
)
def test_workos_http_errors_are_counted(
    workos: WorkOSFake, path: str, status: int, body: Any
) -> None:
    directory = DIRECTORIES["jumpcloud"](jumpcloud_provider(workos.add_organization()))
    workos.fail(path, status, body)
    with pytest.raises(SyncCountedFailure) as raised:
        list(directory.identities())
        list(directory.groups())
    assert raised.value.message == "Error connecting to WorkOS"


def test_a_wrong_api_key_is_counted(workos: WorkOSFake, settings: Any) -> None:
    settings.WORKOS_API_KEY = "sk_wrong"
    with pytest.raises(SyncCountedFailure, match="Error connecting to WorkOS"):
        list(DIRECTORIES["jumpcloud"](jumpcloud_provider(workos.add_organization())).groups())


def test_transport_errors(workos: WorkOSFake) -> None:
    org = workos.add_organization()
    directory = DIRECTORIES["jumpcloud"](jumpcloud_provider(org))
    list(directory.groups())  # the directory is known from now on
    workos.stop()
    # Listing users/groups: log-only; finding the directory: counted.
    with pytest.raises(SyncLogOnly):
        list(directory.identities())
    with pytest.raises(SyncCountedFailure) as raised:
        list(DIRECTORIES["jumpcloud"](jumpcloud_provider(org)).identities())
    assert raised.value.message == "Something went wrong fetching directory"


def test_workos_off_is_log_only(workos: WorkOSFake, settings: Any) -> None:
    settings.WORKOS_API_KEY = ""
    with pytest.raises(SyncLogOnly):
        list(DIRECTORIES["jumpcloud"](jumpcloud_provider(workos.add_organization())).groups())
    assert workos.requests == []
