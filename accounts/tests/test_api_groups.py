"""REST API: actor groups (portal.md §5.2 rows 38-42)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import Account, ActorGroup
from accounts.tests.factories import AccountFactory, GroupFactory, everyone_group, synced_group
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")
SYNCED = error("Groups synced from an identity provider cannot be changed.")
MANAGED = error("The Everyone group is managed by Firezone.")


@pytest.fixture
def account() -> Account:
    return AccountFactory()


@pytest.fixture
def api(account: Account) -> ApiClient:
    return ApiClient(api_token(account=account))


def _shape(group: ActorGroup) -> dict[str, Any]:
    return {"id": str(group.pk), "name": group.name}


def test_unauthenticated_is_401() -> None:
    response = ApiClient().get("/actor_groups")
    assert response.status_code == 401
    assert response.json() == error("Unauthorized")


def test_list_oldest_first_in_pages(account: Account, api: ApiClient) -> None:
    groups = [
        everyone_group(account),
        GroupFactory(account=account, name="Zeta"),
        synced_group(account, name="Synced"),
        GroupFactory(account=account, name="Alpha"),
        GroupFactory(account=account, name="Mid"),
    ]
    GroupFactory()  # another account's
    first = api.get("/actor_groups", limit=2).json()
    assert first["data"] == [_shape(g) for g in groups[:2]]
    assert first["metadata"]["count"] == 5
    assert first["metadata"]["prev_page"] is None
    second = api.get("/actor_groups", limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert second["data"] == [_shape(g) for g in groups[2:4]]
    third = api.get("/actor_groups", limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert third["data"] == [_shape(groups[4])]
    assert third["metadata"]["next_page"] is None
    back = api.get("/actor_groups", limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert back["data"] == second["data"]
    start = api.get("/actor_groups", limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert start["data"] == first["data"]
    assert start["metadata"]["prev_page"] is None


def test_get(account: Account, api: ApiClient) -> None:
    group = GroupFactory(account=account)
    response = api.get(f"/actor_groups/{group.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(group)}


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_unknown_malformed_and_foreign_ids_are_404(api: ApiClient, method: str) -> None:
    foreign = GroupFactory(name="Theirs")
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk):
        if method in ("put", "patch"):
            response = api.send(method, f"/actor_groups/{key}", {"actor_group": {"name": "Mine"}})
        else:
            response = getattr(api, method)(f"/actor_groups/{key}")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    assert ActorGroup.objects.get(pk=foreign.pk).name == "Theirs"


def test_create_a_static_group(account: Account, api: ApiClient) -> None:
    response = api.post("/actor_groups", {"actor_group": {"name": "Engineers", "type": "x"}})
    assert response.status_code == 201
    group = ActorGroup.objects.get(account=account, name="Engineers")
    assert group.type == ActorGroup.Type.STATIC
    assert response.headers["Location"] == f"/actor_groups/{group.pk}"
    assert response.json() == {"data": _shape(group)}


def test_create_validation_errors_are_422(account: Account, api: ApiClient) -> None:
    response = api.post("/actor_groups", {"actor_group": {"name": " "}})
    assert response.status_code == 422
    assert response.json()["error"]["reason"] == "Unprocessable Entity"
    assert "name" in response.json()["error"]["validation_errors"]
    GroupFactory(account=account, name="Taken")
    response = api.post("/actor_groups", {"actor_group": {"name": "Taken"}})
    assert response.status_code == 422
    assert "name" in response.json()["error"]["validation_errors"]
    assert ActorGroup.objects.filter(account=account).count() == 1


def test_create_without_wrapper_is_400(api: ApiClient) -> None:
    response = api.post("/actor_groups", {"name": "Engineers"})
    assert response.status_code == 400
    assert response.json() == error("Bad Request")


@pytest.mark.parametrize("method", ["put", "patch"])
def test_rename(account: Account, api: ApiClient, method: str) -> None:
    group = GroupFactory(account=account, name="Old")
    response = api.send(method, f"/actor_groups/{group.pk}", {"actor_group": {"name": "New"}})
    assert response.status_code == 200
    group.refresh_from_db()
    assert group.name == "New"
    assert response.json() == {"data": _shape(group)}


@pytest.mark.parametrize("method", ["put", "patch"])
def test_changing_a_synced_or_managed_group_is_422(
    account: Account, api: ApiClient, method: str
) -> None:
    for group, body in ((synced_group(account), SYNCED), (everyone_group(account), MANAGED)):
        name = group.name
        response = api.send(method, f"/actor_groups/{group.pk}", {"actor_group": {"name": "X"}})
        assert response.status_code == 422
        assert response.json() == body
        group.refresh_from_db()
        assert group.name == name


def test_delete(account: Account, api: ApiClient) -> None:
    group = GroupFactory(account=account)
    response = api.delete(f"/actor_groups/{group.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(group)}
    assert not ActorGroup.objects.filter(pk=group.pk).exists()


def test_deleting_a_synced_or_managed_group_is_422(account: Account, api: ApiClient) -> None:
    for group, body in ((synced_group(account), SYNCED), (everyone_group(account), MANAGED)):
        response = api.delete(f"/actor_groups/{group.pk}")
        assert response.status_code == 422
        assert response.json() == body
        assert ActorGroup.objects.filter(pk=group.pk).exists()
