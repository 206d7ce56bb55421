"""REST API: clients (portal.md §5.2 rows 2-7)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Account
from accounts.tests.factories import AccountFactory, ActorFactory
from gateways.models import Client
from gateways.tests.factories import ClientFactory, flow_for
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


def _client(account: Account, **kwargs: Any) -> Client:
    return ClientFactory(actor=ActorFactory(account=account), **kwargs)


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _shape(client: Client, *, online: bool = False) -> dict[str, Any]:
    client.refresh_from_db()
    return {
        "id": str(client.pk),
        "external_id": client.external_id,
        "actor_id": str(client.actor_id),
        "name": client.name,
        "ipv4": client.ipv4,
        "ipv6": client.ipv6,
        "online": online,
        "last_seen_user_agent": client.last_seen_user_agent,
        "last_seen_remote_ip": client.last_seen_remote_ip,
        "last_seen_remote_ip_location_region": client.last_seen_remote_ip_location_region,
        "last_seen_remote_ip_location_city": client.last_seen_remote_ip_location_city,
        "last_seen_remote_ip_location_lat": client.last_seen_remote_ip_location_lat,
        "last_seen_remote_ip_location_lon": client.last_seen_remote_ip_location_lon,
        "last_seen_version": client.last_seen_version,
        "last_seen_at": _time(client.last_seen_at),
        "device_serial": client.device_serial,
        "device_uuid": client.device_uuid,
        "identifier_for_vendor": client.identifier_for_vendor,
        "firebase_installation_id": client.firebase_installation_id,
        "verified_at": _time(client.verified_at),
        "verified_by": client.verified_by,
        "verified_by_subject": client.verified_by_subject,
        "created_at": _time(client.inserted_at),
        "updated_at": _time(client.updated_at),
    }


def test_without_a_token_is_401() -> None:
    response = ApiClient().get("/clients")
    assert response.status_code == 401
    assert response.json() == error("Unauthorized")


# --- list -----------------------------------------------------------------------------------


def test_list_most_recently_seen_first(
    account: Account, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = timezone.now()
    old = _client(account, last_seen_at=now - timedelta(hours=1), device_serial="S1")
    new = _client(account, last_seen_at=now, name="Laptop")
    ClientFactory()  # another account's
    monkeypatch.setattr(
        "gateways.api.clients.list_presences_sync", lambda topic: {str(new.pk): [{}]}
    )
    response = api.get("/clients")
    assert response.status_code == 200
    assert response.json() == {
        "data": [_shape(new, online=True), _shape(old)],
        "metadata": {"count": 2, "limit": 50, "next_page": None, "prev_page": None},
    }


def test_pages_forward_and_back(account: Account, api: ApiClient) -> None:
    now = timezone.now()
    rows = [_client(account, last_seen_at=now - timedelta(minutes=i)) for i in range(5)]
    ids = [str(c.pk) for c in rows]

    first = api.get("/clients", limit=2).json()
    assert [c["id"] for c in first["data"]] == ids[:2]
    assert first["metadata"]["count"] == 5
    assert first["metadata"]["prev_page"] is None
    second = api.get("/clients", limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert [c["id"] for c in second["data"]] == ids[2:4]
    third = api.get("/clients", limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert [c["id"] for c in third["data"]] == ids[4:]
    assert third["metadata"]["next_page"] is None

    back = api.get("/clients", limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert [c["id"] for c in back["data"]] == ids[2:4]
    start = api.get("/clients", limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert [c["id"] for c in start["data"]] == ids[:2]
    assert start["metadata"]["prev_page"] is None


def test_a_bad_cursor_is_400(api: ApiClient) -> None:
    response = api.get("/clients", page_cursor="nonsense")
    assert response.status_code == 400
    assert response.json() == error("Invalid cursor")


# --- get, 404s ------------------------------------------------------------------------------


def test_get(account: Account, api: ApiClient) -> None:
    client = _client(account)
    response = api.get(f"/clients/{client.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(client)}


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("put", ""),
        ("patch", ""),
        ("delete", ""),
        ("put", "/verify"),
        ("put", "/unverify"),
    ],
)
def test_unknown_malformed_and_foreign_ids_are_404(
    account: Account, api: ApiClient, method: str, suffix: str
) -> None:
    foreign = ClientFactory(name="Theirs")
    for key in (uuid.uuid4(), "not-a-uuid", foreign.pk):
        path = f"/clients/{key}{suffix}"
        if method in ("put", "patch"):
            response = api.send(method, path, {"client": {"name": "Mine"}})
        else:
            response = getattr(api, method)(path)
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    foreign.refresh_from_db()
    assert (foreign.name, foreign.verified_at) == ("Theirs", None)


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_rename(account: Account, api: ApiClient, method: str) -> None:
    client = _client(account, name="Old")
    response = api.send(method, f"/clients/{client.pk}", {"client": {"name": "New"}})
    assert response.status_code == 200
    client.refresh_from_db()
    assert client.name == "New"
    assert response.json() == {"data": _shape(client)}


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
def test_rename_validation_errors(account: Account, api: ApiClient, name: str) -> None:
    client = _client(account, name="Keep")
    response = api.send("put", f"/clients/{client.pk}", {"client": {"name": name}})
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["reason"] == "Unprocessable Entity"
    assert set(body["error"]["validation_errors"]) == {"name"}
    client.refresh_from_db()
    assert client.name == "Keep"


def test_rename_with_a_wrong_json_type_is_422(account: Account, api: ApiClient) -> None:
    client = _client(account)
    response = api.send("put", f"/clients/{client.pk}", {"client": {"name": ["x"]}})
    assert response.status_code == 422
    assert "name" in response.json()["error"]["validation_errors"]


def test_rename_without_the_wrapper_is_400(account: Account, api: ApiClient) -> None:
    client = _client(account)
    response = api.send("put", f"/clients/{client.pk}", {"name": "x"})
    assert response.status_code == 400
    assert response.json() == error("Bad Request")


# --- delete ---------------------------------------------------------------------------------


def test_delete_returns_the_deleted_client(account: Account, api: ApiClient) -> None:
    client = _client(account)
    flow = flow_for(client)
    shape = _shape(client)
    response = api.delete(f"/clients/{client.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": shape}
    assert not Client.objects.filter(pk=client.pk).exists()
    assert not Flow.objects.filter(pk=flow.pk).exists()


# --- verify, unverify -----------------------------------------------------------------------


def test_verify_then_unverify(account: Account, api: ApiClient) -> None:
    client = _client(account)
    response = api.send("put", f"/clients/{client.pk}/verify", None)
    assert response.status_code == 200
    client.refresh_from_db()
    assert client.verified_at is not None
    assert client.verified_by == "actor"
    assert response.json() == {"data": _shape(client)}
    assert response.json()["data"]["verified_by_subject"]

    again = api.send("put", f"/clients/{client.pk}/verify", None)
    assert again.json()["data"]["verified_at"] == response.json()["data"]["verified_at"]

    flow = flow_for(client)
    response = api.send("put", f"/clients/{client.pk}/unverify", None)
    assert response.status_code == 200
    client.refresh_from_db()
    assert client.verified_at is None
    assert (client.verified_by, client.verified_by_subject) == (None, None)
    assert response.json() == {"data": _shape(client)}
    assert not Flow.objects.filter(pk=flow.pk).exists()
