"""REST API: the API client's account (portal.md §5.2 row 1)."""

from __future__ import annotations

import pytest

from accounts.tests.factories import AccountFactory, ActorFactory
from resources.tests.factories import SiteFactory
from tests.api import ApiClient, api_token

pytestmark = pytest.mark.django_db


def test_account_with_only_its_configured_limits() -> None:
    account = AccountFactory(
        name="Acme",
        legal_name="Acme Inc.",
        slug="acme",
        limits={"users_count": 1, "gateway_groups_count": 5, "service_accounts_count": None},
    )
    ActorFactory(account=account)
    ActorFactory(account=account, admin=True)
    SiteFactory(account=account)
    response = ApiClient(api_token(account=account)).get("/account")
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "id": str(account.pk),
            "slug": "acme",
            "name": "Acme",
            "legal_name": "Acme Inc.",
            "limits": {
                "users": {"used": 2, "available": 0, "total": 1},
                "gateway_groups": {"used": 1, "available": 4, "total": 5},
            },
        }
    }


def test_account_without_limits() -> None:
    response = ApiClient(api_token()).get("/account")
    assert response.status_code == 200
    assert response.json()["data"]["limits"] == {}
