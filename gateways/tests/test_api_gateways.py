"""REST API: the gateways of a site (portal.md §5.2 rows 26-28)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import Account
from accounts.tests.factories import AccountFactory
from gateways.models import Gateway
from gateways.tests.factories import ClientFactory, GatewayFactory, SiteFactory, flow_for
from resources.models import Flow
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")


@pytest.fixture
def account() -> Account:
    return AccountFactory()


@pytest.fixture
def api(account: Account) -> ApiClient:
    return ApiClient(api_token(account=account))


def _shape(gateway: Gateway, *, online: bool = False) -> dict[str, Any]:
    return {
        "id": str(gateway.pk),
        "name": gateway.name,
        "ipv4": gateway.ipv4,
        "ipv6": gateway.ipv6,
        "online": online,
    }


def test_without_a_token_is_401(account: Account) -> None:
    site = SiteFactory(account=account)
    response = ApiClient().get(f"/gateway_groups/{site.pk}/gateways")
    assert response.status_code == 401
    assert response.json() == error("Unauthorized")


# --- list -----------------------------------------------------------------------------------


def test_list_the_sites_gateways_oldest_first(
    account: Account, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = SiteFactory(account=account)
    first, second = GatewayFactory(group=site), GatewayFactory(group=site)
    GatewayFactory(group=SiteFactory(account=account))  # another site's
    GatewayFactory()  # another account's
    monkeypatch.setattr(
        "gateways.api.gateways.presence.list_presences_sync",
        lambda topic: {str(second.pk): [{}]},
    )
    response = api.get(f"/gateway_groups/{site.pk}/gateways")
    assert response.status_code == 200
    assert response.json() == {
        "data": [_shape(first), _shape(second, online=True)],
        "metadata": {"count": 2, "limit": 50, "next_page": None, "prev_page": None},
    }


def test_pages_forward_and_back(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account)
    ids = [str(GatewayFactory(group=site).pk) for _ in range(5)]
    path = f"/gateway_groups/{site.pk}/gateways"

    first = api.get(path, limit=2).json()
    assert [g["id"] for g in first["data"]] == ids[:2]
    assert first["metadata"]["count"] == 5
    assert first["metadata"]["prev_page"] is None
    second = api.get(path, limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert [g["id"] for g in second["data"]] == ids[2:4]
    third = api.get(path, limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert [g["id"] for g in third["data"]] == ids[4:]
    assert third["metadata"]["next_page"] is None

    back = api.get(path, limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert [g["id"] for g in back["data"]] == ids[2:4]
    start = api.get(path, limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert [g["id"] for g in start["data"]] == ids[:2]
    assert start["metadata"]["prev_page"] is None


def test_list_of_an_unknown_malformed_or_foreign_site_is_404(api: ApiClient) -> None:
    foreign = SiteFactory()
    GatewayFactory(group=foreign)
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk):
        response = api.get(f"/gateway_groups/{key}/gateways")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND


# --- get, delete ----------------------------------------------------------------------------


def test_get(account: Account, api: ApiClient) -> None:
    gateway = GatewayFactory(group=SiteFactory(account=account))
    response = api.get(f"/gateway_groups/{gateway.group_id}/gateways/{gateway.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(gateway)}


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_malformed_and_foreign_ids_are_404(
    account: Account, api: ApiClient, method: str
) -> None:
    site = SiteFactory(account=account)
    foreign = GatewayFactory()
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk):
        response = getattr(api, method)(f"/gateway_groups/{site.pk}/gateways/{key}")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    assert Gateway.objects.filter(pk=foreign.pk).exists()


def test_delete_returns_the_deleted_gateway(account: Account, api: ApiClient) -> None:
    gateway = GatewayFactory(group=SiteFactory(account=account))
    client_flow = flow_for(ClientFactory(actor__account=account), gateway)
    shape = _shape(gateway)
    response = api.delete(f"/gateway_groups/{gateway.group_id}/gateways/{gateway.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": shape}
    assert not Gateway.objects.filter(pk=shape["id"]).exists()
    assert not Flow.objects.filter(pk=client_flow.pk).exists()
