"""REST API: gateway groups (sites) and their tokens (portal.md §5.2 rows 18-25)."""

from __future__ import annotations

import uuid

import pytest

from accounts.models import Account, Token
from accounts.services.tokens import token_create
from accounts.tests.factories import AccountFactory
from gateways.models import Gateway, Site
from gateways.services.gateways import gateway_authenticate
from gateways.tests.factories import GatewayFactory, SiteFactory, device_context
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")


@pytest.fixture
def account() -> Account:
    return AccountFactory()


@pytest.fixture
def api(account: Account) -> ApiClient:
    return ApiClient(api_token(account=account))


def _shape(site: Site) -> dict[str, str]:
    return {"id": str(site.pk), "name": site.name}


def _gateway_token(site: Site) -> Token:
    return token_create(type="gateway_group", account=site.account, gateway_group=site).token


def test_without_a_token_is_401() -> None:
    response = ApiClient().get("/gateway_groups")
    assert response.status_code == 401
    assert response.json() == error("Unauthorized")


# --- list -----------------------------------------------------------------------------------


def test_list_oldest_first_with_the_internet_site(account: Account, api: ApiClient) -> None:
    internet = SiteFactory(account=account, internet=True)
    site = SiteFactory(account=account, name="HQ")
    SiteFactory()  # another account's
    response = api.get("/gateway_groups")
    assert response.status_code == 200
    assert response.json() == {
        "data": [_shape(internet), _shape(site)],
        "metadata": {"count": 2, "limit": 50, "next_page": None, "prev_page": None},
    }


def test_pages_forward_and_back(account: Account, api: ApiClient) -> None:
    ids = [str(SiteFactory(account=account).pk) for _ in range(5)]

    first = api.get("/gateway_groups", limit=2).json()
    assert [s["id"] for s in first["data"]] == ids[:2]
    assert first["metadata"]["count"] == 5
    assert first["metadata"]["prev_page"] is None
    second = api.get("/gateway_groups", limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert [s["id"] for s in second["data"]] == ids[2:4]
    third = api.get("/gateway_groups", limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert [s["id"] for s in third["data"]] == ids[4:]
    assert third["metadata"]["next_page"] is None

    back = api.get("/gateway_groups", limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert [s["id"] for s in back["data"]] == ids[2:4]
    start = api.get("/gateway_groups", limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert [s["id"] for s in start["data"]] == ids[:2]
    assert start["metadata"]["prev_page"] is None


# --- get, 404s ------------------------------------------------------------------------------


def test_get(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account)
    response = api.get(f"/gateway_groups/{site.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(site)}


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("put", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/tokens"),
        ("delete", "/tokens"),
    ],
)
def test_unknown_malformed_and_foreign_ids_are_404(
    account: Account, api: ApiClient, method: str, suffix: str
) -> None:
    foreign = SiteFactory(name="Theirs")
    token = _gateway_token(foreign)
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk):
        path = f"/gateway_groups/{key}{suffix}"
        if method in ("put", "patch", "post"):
            response = api.send(method, path, {"gateway_group": {"name": "Mine"}})
        else:
            response = getattr(api, method)(path)
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    foreign.refresh_from_db()
    assert foreign.name == "Theirs"
    assert list(Token.objects.filter(gateway_group=foreign)) == [token]


# --- create ---------------------------------------------------------------------------------


def test_create(account: Account, api: ApiClient) -> None:
    response = api.post("/gateway_groups", {"gateway_group": {"name": "HQ"}})
    assert response.status_code == 201
    site = Site.objects.get(account=account, name="HQ")
    assert response.headers["Location"] == f"/gateway_groups/{site.pk}"
    assert response.json() == {"data": _shape(site)}
    assert site.managed_by == Site.ManagedBy.ACCOUNT
    assert site.created_by == "actor"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 65}, "name"),
        ({}, "name"),
        ({"name": ["x"]}, "name"),
    ],
)
def test_create_validation_errors(account: Account, api: ApiClient, body: dict, field: str) -> None:
    response = api.post("/gateway_groups", {"gateway_group": body})
    assert response.status_code == 422
    assert response.json()["error"]["reason"] == "Unprocessable Entity"
    assert set(response.json()["error"]["validation_errors"]) == {field}
    assert not Site.objects.filter(account=account).exists()


def test_create_with_a_taken_name_is_422(account: Account, api: ApiClient) -> None:
    SiteFactory(account=account, name="HQ")
    response = api.post("/gateway_groups", {"gateway_group": {"name": "HQ"}})
    assert response.status_code == 422
    assert response.json()["error"]["validation_errors"] == {"name": ["has already been taken"]}


def test_create_over_the_site_limit_is_422_with_the_reason(
    account: Account, api: ApiClient
) -> None:
    Account.objects.filter(pk=account.pk).update(limits={"gateway_groups_count": 1})
    SiteFactory(account=account)
    response = api.post("/gateway_groups", {"gateway_group": {"name": "Second"}})
    assert response.status_code == 422
    assert response.json() == error("Sites Limit Reached")
    assert Site.objects.filter(account=account).count() == 1


def test_create_without_the_wrapper_is_400(api: ApiClient) -> None:
    response = api.post("/gateway_groups", {"name": "HQ"})
    assert response.status_code == 400
    assert response.json() == error("Bad Request")


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_rename(account: Account, api: ApiClient, method: str) -> None:
    site = SiteFactory(account=account, name="Old")
    response = api.send(method, f"/gateway_groups/{site.pk}", {"gateway_group": {"name": "New"}})
    assert response.status_code == 200
    site.refresh_from_db()
    assert site.name == "New"
    assert response.json() == {"data": _shape(site)}


def test_rename_validation_errors(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account, name="Keep")
    response = api.send("put", f"/gateway_groups/{site.pk}", {"gateway_group": {"name": ""}})
    assert response.status_code == 422
    assert set(response.json()["error"]["validation_errors"]) == {"name"}
    site.refresh_from_db()
    assert site.name == "Keep"


def test_renaming_the_internet_site_is_422(account: Account, api: ApiClient) -> None:
    internet = SiteFactory(account=account, internet=True)
    body = {"gateway_group": {"name": "Mine"}}
    response = api.send("put", f"/gateway_groups/{internet.pk}", body)
    assert response.status_code == 422
    assert response.json() == error("The Internet site is managed by the system.")
    internet.refresh_from_db()
    assert internet.name == "Internet"


# --- delete ---------------------------------------------------------------------------------


def test_delete_returns_the_deleted_site(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account)
    gateway = GatewayFactory(group=site)
    token = _gateway_token(site)
    response = api.delete(f"/gateway_groups/{site.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(site)}
    assert not Site.objects.filter(pk=site.pk).exists()
    assert not Gateway.objects.filter(pk=gateway.pk).exists()
    assert not Token.objects.filter(pk=token.pk).exists()


def test_deleting_the_internet_site_is_422(account: Account, api: ApiClient) -> None:
    internet = SiteFactory(account=account, internet=True)
    response = api.delete(f"/gateway_groups/{internet.pk}")
    assert response.status_code == 422
    assert response.json() == error("The Internet site is managed by the system.")
    assert Site.objects.filter(pk=internet.pk).exists()


# --- tokens ---------------------------------------------------------------------------------


def test_create_a_token_that_authenticates_a_gateway(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account)
    response = api.post(f"/gateway_groups/{site.pk}/tokens", None)
    assert response.status_code == 201
    body = response.json()["data"]
    assert set(body) == {"id", "token"}
    token = Token.objects.get(pk=body["id"])
    assert (token.type, token.gateway_group_id, token.expires_at) == (
        "gateway_group",
        site.pk,
        None,
    )
    authenticated, used = gateway_authenticate(body["token"], context=device_context())
    assert (authenticated.pk, used.pk) == (site.pk, token.pk)


def test_delete_all_tokens_of_a_site(account: Account, api: ApiClient) -> None:
    site, other = SiteFactory(account=account), SiteFactory(account=account)
    for _ in range(2):
        _gateway_token(site)
    kept = _gateway_token(other)
    response = api.delete(f"/gateway_groups/{site.pk}/tokens")
    assert response.status_code == 200
    assert response.json() == {"data": {"deleted_count": 2}}
    assert not Token.objects.filter(gateway_group=site).exists()
    assert Token.objects.filter(pk=kept.pk).exists()
    again = api.delete(f"/gateway_groups/{site.pk}/tokens")
    assert again.json() == {"data": {"deleted_count": 0}}


def test_delete_one_token(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account)
    token, kept = _gateway_token(site), _gateway_token(site)
    response = api.delete(f"/gateway_groups/{site.pk}/tokens/{token.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": {"id": str(token.pk)}}
    assert not Token.objects.filter(pk=token.pk).exists()
    assert Token.objects.filter(pk=kept.pk).exists()


def test_delete_one_token_404s(account: Account, api: ApiClient) -> None:
    site = SiteFactory(account=account)
    foreign = _gateway_token(SiteFactory())
    not_a_gateway_token = Token.objects.get(type="api_client", account=account)
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk, not_a_gateway_token.pk):
        response = api.delete(f"/gateway_groups/{site.pk}/tokens/{key}")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    mine = _gateway_token(site)
    for key in (uuid.uuid4(), "not-a-uuid", SiteFactory().pk):
        response = api.delete(f"/gateway_groups/{key}/tokens/{mine.pk}")
        assert response.status_code == 404, key
    assert Token.objects.filter(pk__in=[foreign.pk, not_a_gateway_token.pk, mine.pk]).count() == 3
