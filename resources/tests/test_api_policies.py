"""REST API: policies (portal.md §5.2 rows 13-17)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import Account
from accounts.tests.factories import AccountFactory, GroupFactory
from resources.models import Policy
from resources.tests.factories import PolicyFactory, ResourceFactory
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")


@pytest.fixture
def account() -> Account:
    return AccountFactory()


@pytest.fixture
def api(account: Account) -> ApiClient:
    return ApiClient(api_token(account=account))


def _shape(policy: Policy) -> dict[str, Any]:
    return {
        "id": str(policy.pk),
        "actor_group_id": str(policy.actor_group_id),
        "resource_id": str(policy.resource_id),
        "description": policy.description,
    }


def test_list_oldest_first_in_pages(account: Account, api: ApiClient) -> None:
    policies = [PolicyFactory(account=account, description=f"P{i}") for i in range(3)]
    PolicyFactory()  # another account's
    first = api.get("/policies", limit=2).json()
    assert first["data"] == [_shape(p) for p in policies[:2]]
    assert first["metadata"]["count"] == 3
    second = api.get("/policies", limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert second["data"] == [_shape(policies[2])]
    back = api.get("/policies", limit=2, page_cursor=second["metadata"]["prev_page"]).json()
    assert back["data"] == first["data"]


def test_get_by_id_and_persistent_id(account: Account, api: ApiClient) -> None:
    policy = PolicyFactory(account=account, description="Engineers")
    for key in (policy.pk, policy.persistent_id):
        response = api.get(f"/policies/{key}")
        assert response.status_code == 200
        assert response.json() == {"data": _shape(policy)}


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_malformed_and_foreign_ids_are_404(
    account: Account, api: ApiClient, method: str
) -> None:
    foreign = PolicyFactory(description="Theirs")
    for key in (uuid.uuid4(), "nope", foreign.pk):
        if method == "put":
            response = api.send(method, f"/policies/{key}", {"policy": {"description": "x"}})
        else:
            response = getattr(api, method)(f"/policies/{key}")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    foreign.refresh_from_db()
    assert foreign.description == "Theirs"


def test_create_with_conditions(account: Account, api: ApiClient) -> None:
    group = GroupFactory(account=account)
    resource = ResourceFactory(account=account)
    body = {
        "policy": {
            "actor_group_id": str(group.pk),
            "resource_id": str(resource.pk),
            "description": "Engineers to the app",
            "conditions": [
                {"property": "remote_ip", "operator": "is_in_cidr", "values": ["10.0.0.0/8"]}
            ],
        }
    }
    response = api.post("/policies", body)
    assert response.status_code == 201
    policy = Policy.objects.get(account=account)
    assert response.headers["Location"] == f"/policies/{policy.pk}"
    assert response.json() == {"data": _shape(policy)}  # conditions are not returned
    assert policy.conditions[0]["values"] == ["10.0.0.0/8"]


def test_create_errors(account: Account, api: ApiClient) -> None:
    response = api.post("/policies", {"policy": {"description": "x"}})
    assert response.status_code == 422
    assert response.json()["error"]["validation_errors"] == {
        "actor_group_id": ["can't be blank"],
        "resource_id": ["can't be blank"],
    }


def test_a_duplicate_is_a_base_error(account: Account, api: ApiClient) -> None:
    policy = PolicyFactory(account=account)
    body = {
        "policy": {
            "actor_group_id": str(policy.actor_group_id),
            "resource_id": str(policy.resource_id),
        }
    }
    response = api.post("/policies", body)
    assert response.status_code == 422
    assert set(response.json()["error"]["validation_errors"]) == {"base"}


def test_another_accounts_group_in_a_body_is_404(account: Account, api: ApiClient) -> None:
    resource = ResourceFactory(account=account)
    body = {"policy": {"actor_group_id": str(GroupFactory().pk), "resource_id": str(resource.pk)}}
    response = api.post("/policies", body)
    assert response.status_code == 404
    assert not Policy.objects.filter(account=account).exists()


def test_bad_conditions_nest_by_index(account: Account, api: ApiClient) -> None:
    policy = PolicyFactory(account=account)
    body = {"policy": {"conditions": [{"property": "remote_ip", "operator": "is", "values": []}]}}
    response = api.send("patch", f"/policies/{policy.pk}", body)
    assert response.status_code == 422
    assert list(response.json()["error"]["validation_errors"]["conditions"]) == ["0"]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_changes_only_the_given_fields(
    account: Account, api: ApiClient, method: str
) -> None:
    policy = PolicyFactory(account=account, description="Old")
    group = GroupFactory(account=account)
    body = {"policy": {"actor_group_id": str(group.pk)}}
    response = api.send(method, f"/policies/{policy.pk}", body)
    assert response.status_code == 200
    policy.refresh_from_db()
    assert (policy.actor_group_id, policy.description) == (group.pk, "Old")
    assert response.json() == {"data": _shape(policy)}


def test_delete_returns_the_deleted_policy(account: Account, api: ApiClient) -> None:
    policy = PolicyFactory(account=account)
    shape = _shape(policy)
    response = api.delete(f"/policies/{policy.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": shape}
    assert not Policy.objects.filter(pk=policy.pk).exists()
