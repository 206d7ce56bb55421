"""REST API: identity providers (portal.md §5.2 rows 46-48)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import Account, AuthProvider
from accounts.tests.factories import AccountFactory, ProviderFactory
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")
DISABLED = "2026-01-01T00:00:00Z"


@pytest.fixture
def account() -> Account:
    return AccountFactory()


@pytest.fixture
def api(account: Account) -> ApiClient:
    return ApiClient(api_token(account=account))


def _shape(provider: AuthProvider) -> dict[str, Any]:
    return {"id": str(provider.pk), "name": provider.name}


def test_unauthenticated_is_401() -> None:
    response = ApiClient().get("/identity_providers")
    assert response.status_code == 401
    assert response.json() == error("Unauthorized")


def test_list_oldest_first_in_pages(account: Account, api: ApiClient) -> None:
    providers = [
        ProviderFactory(account=account, name="Email"),
        ProviderFactory(account=account, oidc=True, name="Okta"),
        ProviderFactory(account=account, userpass=True),
        ProviderFactory(account=account, oidc=True, name="Another"),
        ProviderFactory(account=account, oidc=True, name="Beta", disabled_at=DISABLED),
    ]
    ProviderFactory()  # another account's
    path = "/identity_providers"
    first = api.get(path, limit=2).json()
    assert first["data"] == [_shape(p) for p in providers[:2]]
    assert first["metadata"]["count"] == 5
    assert first["metadata"]["prev_page"] is None
    second = api.get(path, limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert second["data"] == [_shape(p) for p in providers[2:4]]
    third = api.get(path, limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert third["data"] == [_shape(providers[4])]
    assert third["metadata"]["next_page"] is None
    back = api.get(path, limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert back["data"] == second["data"]
    start = api.get(path, limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert start["data"] == first["data"]


def test_get(account: Account, api: ApiClient) -> None:
    provider = ProviderFactory(account=account)
    response = api.get(f"/identity_providers/{provider.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(provider)}


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_malformed_and_foreign_ids_are_404(api: ApiClient, method: str) -> None:
    foreign = ProviderFactory()
    ProviderFactory(account=foreign.account, oidc=True)  # not the last: a delete would pass
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk):
        response = getattr(api, method)(f"/identity_providers/{key}")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    assert AuthProvider.objects.filter(pk=foreign.pk).exists()


def test_delete(account: Account, api: ApiClient) -> None:
    provider = ProviderFactory(account=account)
    ProviderFactory(account=account, oidc=True)
    response = api.delete(f"/identity_providers/{provider.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(provider)}
    assert not AuthProvider.objects.filter(pk=provider.pk).exists()


def test_deleting_the_last_active_provider_is_422(account: Account, api: ApiClient) -> None:
    provider = ProviderFactory(account=account)
    ProviderFactory(account=account, oidc=True, disabled_at=DISABLED)
    response = api.delete(f"/identity_providers/{provider.pk}")
    assert response.status_code == 422
    assert response.json() == error("You can not delete the last active provider of the account.")
    assert AuthProvider.objects.filter(pk=provider.pk).exists()
