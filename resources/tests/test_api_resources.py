"""REST API: resources (portal.md §5.2 rows 8-12)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import Account
from accounts.tests.factories import AccountFactory
from resources.models import Policy, Resource, ResourceConnection
from resources.tests.factories import (
    ConnectionFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
)
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")


@pytest.fixture
def account() -> Account:
    return AccountFactory()


@pytest.fixture
def api(account: Account) -> ApiClient:
    return ApiClient(api_token(account=account))


def _shape(resource: Resource) -> dict[str, Any]:
    shape = {
        "id": str(resource.pk),
        "name": resource.name,
        "address": resource.address,
        "address_description": resource.address_description,
        "type": resource.type,
    }
    if resource.ip_stack is not None:
        shape["ip_stack"] = resource.ip_stack
    return shape


# --- list -----------------------------------------------------------------------------------


def test_list_by_name_with_metadata(account: Account, api: ApiClient) -> None:
    b = ResourceFactory(account=account, name="B", type="ip", address="10.0.0.1", ip_stack=None)
    a = ResourceFactory(account=account, name="A", address_description="the app")
    ResourceFactory()  # another account's
    response = api.get("/resources")
    assert response.status_code == 200
    assert response.json() == {
        "data": [_shape(a), _shape(b)],
        "metadata": {"count": 2, "limit": 50, "next_page": None, "prev_page": None},
    }
    assert "ip_stack" not in response.json()["data"][1]  # only DNS resources have one


def test_pages_forward_and_back(account: Account, api: ApiClient) -> None:
    rows = [ResourceFactory(account=account, name=f"R{i}") for i in range(5)]
    names = [r.name for r in rows]

    first = api.get("/resources", limit=2).json()
    assert [r["name"] for r in first["data"]] == names[:2]
    assert first["metadata"]["count"] == 5
    assert first["metadata"]["prev_page"] is None

    second = api.get("/resources", limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert [r["name"] for r in second["data"]] == names[2:4]

    third = api.get("/resources", limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert [r["name"] for r in third["data"]] == names[4:]
    assert third["metadata"]["next_page"] is None

    back = api.get("/resources", limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert [r["name"] for r in back["data"]] == names[2:4]
    start = api.get("/resources", limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert [r["name"] for r in start["data"]] == names[:2]
    assert start["metadata"]["prev_page"] is None
    assert start["metadata"]["limit"] == 2


# --- get ------------------------------------------------------------------------------------


def test_get_by_id_and_by_persistent_id(account: Account, api: ApiClient) -> None:
    resource = ResourceFactory(account=account)
    for key in (resource.pk, resource.persistent_id):
        response = api.get(f"/resources/{key}")
        assert response.status_code == 200
        assert response.json() == {"data": _shape(resource)}


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_unknown_malformed_and_foreign_ids_are_404(
    account: Account, api: ApiClient, method: str
) -> None:
    foreign = ResourceFactory(name="Theirs")
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk):
        if method in ("put", "patch"):
            response = api.send(method, f"/resources/{key}", {"resource": {"name": "Mine"}})
        else:
            response = getattr(api, method)(f"/resources/{key}")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    foreign.refresh_from_db()
    assert foreign.name == "Theirs"


# --- create ---------------------------------------------------------------------------------


def test_create(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account)
    body = {
        "resource": {
            "name": "Web",
            "type": "dns",
            "address": "web.example.com",
            "address_description": "the web app",
            "connections": [{"gateway_group_id": str(site.pk)}],
            "filters": [{"protocol": "tcp", "ports": ["443", "8000-8080"]}],
        }
    }
    response = api.post("/resources", body)
    assert response.status_code == 201
    resource = Resource.objects.get(account=account, name="Web")
    assert response.headers["Location"] == f"/resources/{resource.pk}"
    assert response.json() == {"data": _shape(resource)}
    assert response.json()["data"]["ip_stack"] == "dual"
    assert resource.filters == [{"protocol": "tcp", "ports": ["443", "8000 - 8080"]}]
    assert list(
        ResourceConnection.objects.filter(resource=resource).values_list(
            "gateway_group_id", flat=True
        )
    ) == [site.pk]
    assert resource.created_by == "actor"


def test_create_reports_the_services_validation_errors(account: Account, api: ApiClient) -> None:
    response = api.post("/resources", {"resource": {"name": " ", "type": "dns"}})
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["reason"] == "Unprocessable Entity"
    errors = body["error"]["validation_errors"]
    assert errors["name"] == ["can't be blank"]
    assert errors["connections"] == ["can't be blank"]
    assert "address" in errors
    assert not Resource.objects.filter(account=account).exists()


def test_create_with_bad_filters_nests_their_errors(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account)
    body = {
        "resource": {
            "name": "Web",
            "type": "ip",
            "address": "10.0.0.1",
            "connections": [{"gateway_group_id": str(site.pk)}],
            "filters": [{"protocol": "tcp", "ports": ["443"]}, {"protocol": "gre"}],
        }
    }
    response = api.post("/resources", body)
    assert response.status_code == 422
    assert set(response.json()["error"]["validation_errors"]["filters"]) == {"1"}


def test_create_with_wrong_json_types_is_422(api: ApiClient) -> None:
    response = api.post("/resources", {"resource": {"connections": "site"}})
    assert response.status_code == 422
    assert "connections" in response.json()["error"]["validation_errors"]


def test_create_with_another_accounts_site_is_422(account: Account, api: ApiClient) -> None:
    foreign_site = SiteFactory()
    body = {
        "resource": {
            "name": "Web",
            "type": "dns",
            "address": "web.example.com",
            "connections": [{"gateway_group_id": str(foreign_site.pk)}],
        }
    }
    response = api.post("/resources", body)
    assert response.status_code == 422
    assert response.json()["error"]["validation_errors"] == {"connections": ["site does not exist"]}


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_changes_only_the_given_fields(
    account: Account, api: ApiClient, method: str
) -> None:
    resource = ResourceFactory(account=account, name="Old", address="old.example.com")
    response = api.send(method, f"/resources/{resource.pk}", {"resource": {"name": "New"}})
    assert response.status_code == 200
    resource.refresh_from_db()
    assert (resource.name, resource.address) == ("New", "old.example.com")
    assert response.json() == {"data": _shape(resource)}


def test_update_by_persistent_id_and_connections(account: Account, api: ApiClient) -> None:
    resource = ResourceFactory(account=account)
    old = ConnectionFactory(resource=resource)
    new_site = SiteFactory(account=account)
    body = {"resource": {"connections": [{"gateway_group_id": str(new_site.pk)}]}}
    response = api.send("put", f"/resources/{resource.persistent_id}", body)
    assert response.status_code == 200
    sites = ResourceConnection.objects.filter(resource=resource).values_list(
        "gateway_group_id", flat=True
    )
    assert list(sites) == [new_site.pk]
    assert not ResourceConnection.objects.filter(pk=old.pk).exists()


def test_update_validation_errors(account: Account, api: ApiClient) -> None:
    resource = ResourceFactory(account=account, name="Keep")
    response = api.send("patch", f"/resources/{resource.pk}", {"resource": {"name": ""}})
    assert response.status_code == 422
    assert response.json()["error"]["validation_errors"] == {"name": ["can't be blank"]}
    resource.refresh_from_db()
    assert resource.name == "Keep"


def test_update_without_the_wrapper_is_400(account: Account, api: ApiClient) -> None:
    resource = ResourceFactory(account=account)
    response = api.send("put", f"/resources/{resource.pk}", {"name": "x"})
    assert response.status_code == 400
    assert response.json() == error("Bad Request")


# --- delete ---------------------------------------------------------------------------------


def test_delete_returns_the_deleted_resource(account: Account, api: ApiClient) -> None:
    resource = ResourceFactory(account=account)
    policy = PolicyFactory(account=account, resource=resource)
    shape = _shape(resource)
    response = api.delete(f"/resources/{resource.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": shape}
    assert not Resource.objects.filter(pk=shape["id"]).exists()
    assert not Policy.objects.filter(pk=policy.pk).exists()


def test_deleting_the_internet_resource_is_refused_with_422(
    account: Account, api: ApiClient
) -> None:
    internet = ResourceFactory(account=account, internet=True)
    response = api.delete(f"/resources/{internet.pk}")
    assert response.status_code == 422
    assert response.json() == error("The Internet Resource cannot be deleted.")
    assert Resource.objects.filter(pk=internet.pk).exists()
