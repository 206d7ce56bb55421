"""REST API: actors (portal.md §5.2 rows 29-33)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import Account, Actor
from accounts.tests.factories import AccountFactory, ActorFactory
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")


@pytest.fixture
def account() -> Account:
    return AccountFactory()


@pytest.fixture
def api(account: Account) -> ApiClient:
    return ApiClient(api_token(account=account))


def _shape(actor: Actor) -> dict[str, Any]:
    return {"id": str(actor.pk), "name": actor.name, "type": actor.type}


def _api_client(account: Account) -> Actor:
    return Actor.objects.get(account=account, type=Actor.Type.API_CLIENT)


def test_unauthenticated_is_401() -> None:
    response = ApiClient().get("/actors")
    assert response.status_code == 401
    assert response.json() == error("Unauthorized")


def test_list_every_type_oldest_first_in_pages(account: Account, api: ApiClient) -> None:
    actors = [
        _api_client(account),
        ActorFactory(account=account, name="User"),
        ActorFactory(account=account, admin=True, name="Admin"),
        ActorFactory(account=account, service_account=True, name="Robot"),
        ActorFactory(account=account, name="Last"),
    ]
    ActorFactory()  # another account's
    first = api.get("/actors", limit=2).json()
    assert first["data"] == [_shape(a) for a in actors[:2]]
    assert first["metadata"] == {
        "count": 5,
        "limit": 2,
        "next_page": first["metadata"]["next_page"],
        "prev_page": None,
    }
    second = api.get("/actors", limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert second["data"] == [_shape(a) for a in actors[2:4]]
    third = api.get("/actors", limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert third["data"] == [_shape(actors[4])]
    assert third["metadata"]["next_page"] is None
    back = api.get("/actors", limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert back["data"] == second["data"]
    start = api.get("/actors", limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert start["data"] == first["data"]
    assert start["metadata"]["prev_page"] is None


def test_invalid_cursor_is_400(api: ApiClient) -> None:
    response = api.get("/actors", page_cursor="garbage")
    assert response.status_code == 400
    assert response.json() == error("Invalid cursor")


def test_get(account: Account, api: ApiClient) -> None:
    actor = ActorFactory(account=account, admin=True)
    response = api.get(f"/actors/{actor.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(actor)}


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_unknown_malformed_and_foreign_ids_are_404(api: ApiClient, method: str) -> None:
    foreign = ActorFactory(name="Theirs")
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk):
        if method in ("put", "patch"):
            response = api.send(method, f"/actors/{key}", {"actor": {"name": "Mine"}})
        else:
            response = getattr(api, method)(f"/actors/{key}")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    assert Actor.objects.get(pk=foreign.pk).name == "Theirs"


@pytest.mark.parametrize("actor_type", ["account_user", "service_account", "api_client"])
def test_create(account: Account, api: ApiClient, actor_type: str) -> None:
    response = api.post("/actors", {"actor": {"name": "New", "type": actor_type}})
    assert response.status_code == 201
    actor = Actor.objects.get(account=account, name="New")
    assert actor.type == actor_type
    assert response.headers["Location"] == f"/actors/{actor.pk}"
    assert response.json() == {"data": _shape(actor)}


def test_create_without_name_or_type_is_422(account: Account, api: ApiClient) -> None:
    response = api.post("/actors", {"actor": {}})
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["reason"] == "Unprocessable Entity"
    assert set(body["validation_errors"]) == {"name", "type"}
    bad_type = api.post("/actors", {"actor": {"name": "X", "type": "overlord"}})
    assert bad_type.status_code == 422
    assert "type" in bad_type.json()["error"]["validation_errors"]
    assert Actor.objects.filter(account=account).count() == 1  # the API client


def test_create_a_type_beyond_the_clients_permissions_is_422(
    account: Account, api: ApiClient
) -> None:
    # An API client may grant only what its own permissions cover: not an admin's.
    response = api.post("/actors", {"actor": {"name": "Boss", "type": "account_admin_user"}})
    assert response.status_code == 422
    assert "type" in response.json()["error"]["validation_errors"]
    assert not Actor.objects.filter(account=account, name="Boss").exists()


def test_create_without_wrapper_is_400(api: ApiClient) -> None:
    response = api.post("/actors", {"name": "New", "type": "account_user"})
    assert response.status_code == 400
    assert response.json() == error("Bad Request")


@pytest.mark.parametrize(
    ("limits", "actor_type", "reason"),
    [
        ({"users_count": 0}, "account_user", "Seat Limit Reached"),
        ({"service_accounts_count": 0}, "service_account", "Service Accounts Limit Reached"),
    ],
)
def test_create_over_a_plan_limit_is_422(limits: dict, actor_type: str, reason: str) -> None:
    account = AccountFactory(limits=limits)
    api = ApiClient(api_token(account=account))
    response = api.post("/actors", {"actor": {"name": "Extra", "type": actor_type}})
    assert response.status_code == 422
    assert response.json() == error(reason)
    assert not Actor.objects.filter(account=account, name="Extra").exists()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update(account: Account, api: ApiClient, method: str) -> None:
    actor = ActorFactory(account=account, name="Old")
    response = api.send(method, f"/actors/{actor.pk}", {"actor": {"name": "New"}})
    assert response.status_code == 200
    actor.refresh_from_db()
    assert (actor.name, actor.type) == ("New", "account_user")
    assert response.json() == {"data": _shape(actor)}
    response = api.send(method, f"/actors/{actor.pk}", {"actor": {"type": "service_account"}})
    assert response.status_code == 200
    actor.refresh_from_db()
    assert (actor.name, actor.type) == ("New", "service_account")


def test_update_blank_name_is_422(account: Account, api: ApiClient) -> None:
    actor = ActorFactory(account=account, name="Old")
    response = api.send("put", f"/actors/{actor.pk}", {"actor": {"name": " "}})
    assert response.status_code == 422
    assert "name" in response.json()["error"]["validation_errors"]
    actor.refresh_from_db()
    assert actor.name == "Old"


def test_demoting_the_last_admin_is_422(account: Account, api: ApiClient) -> None:
    admin = ActorFactory(account=account, admin=True)
    response = api.send("patch", f"/actors/{admin.pk}", {"actor": {"type": "account_user"}})
    assert response.status_code == 422
    assert response.json() == error("You may not demote the last admin.")
    admin.refresh_from_db()
    assert admin.type == "account_admin_user"


def test_delete(account: Account, api: ApiClient) -> None:
    actor = ActorFactory(account=account)
    response = api.delete(f"/actors/{actor.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(actor)}
    assert not Actor.objects.filter(pk=actor.pk).exists()


def test_deleting_the_last_admin_is_422(account: Account, api: ApiClient) -> None:
    admin = ActorFactory(account=account, admin=True)
    response = api.delete(f"/actors/{admin.pk}")
    assert response.status_code == 422
    assert response.json() == error("You can't delete the last admin of an account.")
    assert Actor.objects.filter(pk=admin.pk).exists()
    ActorFactory(account=account, admin=True)
    assert api.delete(f"/actors/{admin.pk}").status_code == 200
