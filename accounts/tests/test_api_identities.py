"""REST API: an actor's identities (portal.md §5.2 rows 34-37)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import Account, Actor, AuthIdentity, AuthProvider
from accounts.services.identities import MSG_NO_MANUAL_IDENTITIES
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
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


@pytest.fixture
def actor(account: Account) -> Actor:
    return ActorFactory(account=account)


def _shape(identity: AuthIdentity) -> dict[str, Any]:
    return {
        "id": str(identity.pk),
        "actor_id": str(identity.actor_id),
        "provider_id": str(identity.provider_id),
        "provider_identifier": identity.provider_identifier,
        "email": identity.email,
    }


def test_unauthenticated_is_401(actor: Actor) -> None:
    response = ApiClient().get(f"/actors/{actor.pk}/identities")
    assert response.status_code == 401
    assert response.json() == error("Unauthorized")


def test_list_the_actors_oldest_first_in_pages(
    account: Account, api: ApiClient, actor: Actor
) -> None:
    provider = ProviderFactory(account=account)
    identities = [IdentityFactory(actor=actor, provider=provider) for _ in range(5)]
    IdentityFactory(actor=ActorFactory(account=account), provider=provider)  # another actor's
    path = f"/actors/{actor.pk}/identities"
    first = api.get(path, limit=2).json()
    assert first["data"] == [_shape(i) for i in identities[:2]]
    assert first["metadata"]["count"] == 5
    assert first["metadata"]["prev_page"] is None
    second = api.get(path, limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert second["data"] == [_shape(i) for i in identities[2:4]]
    third = api.get(path, limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert third["data"] == [_shape(identities[4])]
    assert third["metadata"]["next_page"] is None
    back = api.get(path, limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert back["data"] == second["data"]
    start = api.get(path, limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert start["data"] == first["data"]


def test_list_of_an_unknown_malformed_or_foreign_actor_is_404(api: ApiClient) -> None:
    foreign = IdentityFactory()
    for key in (uuid.uuid4(), "not-a-uuid", foreign.actor_id):
        response = api.get(f"/actors/{key}/identities")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND


def test_get(account: Account, api: ApiClient, actor: Actor) -> None:
    identity = IdentityFactory(actor=actor, provider=ProviderFactory(account=account))
    response = api.get(f"/actors/{actor.pk}/identities/{identity.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(identity)}


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_malformed_foreign_and_other_actors_ids_are_404(
    account: Account, api: ApiClient, actor: Actor, method: str
) -> None:
    foreign = IdentityFactory()
    others = IdentityFactory(actor=ActorFactory(account=account))
    for actor_id, key in (
        (actor.pk, uuid.uuid4()),
        (actor.pk, "not-a-uuid"),
        (actor.pk, foreign.pk),
        (foreign.actor_id, foreign.pk),
        (actor.pk, others.pk),  # an identity of another actor of the account
    ):
        response = getattr(api, method)(f"/actors/{actor_id}/identities/{key}")
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    assert AuthIdentity.objects.filter(pk__in=[foreign.pk, others.pk]).count() == 2


def test_delete(account: Account, api: ApiClient, actor: Actor) -> None:
    identity = IdentityFactory(actor=actor, provider=ProviderFactory(account=account))
    response = api.delete(f"/actors/{actor.pk}/identities/{identity.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": _shape(identity)}
    assert not AuthIdentity.objects.filter(pk=identity.pk).exists()


def test_deleting_a_synced_identity_is_422(account: Account, api: ApiClient, actor: Actor) -> None:
    provider = ProviderFactory(account=account, oidc=True)
    identity = IdentityFactory(actor=actor, provider=provider, created_by="provider")
    response = api.delete(f"/actors/{actor.pk}/identities/{identity.pk}")
    assert response.status_code == 422
    assert response.json() == error(
        "Identities synced from an identity provider cannot be deleted."
    )
    assert AuthIdentity.objects.filter(pk=identity.pk).exists()


def _create_path(actor: Actor | Any, provider: AuthProvider | Any) -> str:
    actor_id = actor.pk if isinstance(actor, Actor) else actor
    provider_id = provider.pk if isinstance(provider, AuthProvider) else provider
    return f"/actors/{actor_id}/providers/{provider_id}/identities"


def test_create_at_an_email_provider(account: Account, api: ApiClient, actor: Actor) -> None:
    provider = ProviderFactory(account=account)
    body = {"identity": {"provider_identifier": "jane@example.com"}}
    response = api.post(_create_path(actor, provider), body)
    assert response.status_code == 201
    identity = AuthIdentity.objects.get(actor=actor, provider=provider)
    assert response.headers["Location"] == f"/actors/{actor.pk}/identities/{identity.pk}"
    assert response.json() == {"data": _shape(identity)}
    assert identity.email == "jane@example.com"
    assert identity.created_by == "actor"


def test_create_at_an_oidc_provider_with_an_email(
    account: Account, api: ApiClient, actor: Actor
) -> None:
    provider = ProviderFactory(account=account, oidc=True)
    body = {"identity": {"provider_identifier": "sub-1", "email": "jane@example.com"}}
    response = api.post(_create_path(actor, provider), body)
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["provider_identifier"], data["email"]) == ("sub-1", "jane@example.com")


def test_create_validation_errors_are_422(account: Account, api: ApiClient, actor: Actor) -> None:
    provider = ProviderFactory(account=account)
    response = api.post(_create_path(actor, provider), {"identity": {}})
    assert response.status_code == 422
    assert "provider_identifier" in response.json()["error"]["validation_errors"]
    taken = IdentityFactory(actor=actor, provider=provider)
    body = {"identity": {"provider_identifier": taken.provider_identifier}}
    response = api.post(_create_path(actor, provider), body)
    assert response.status_code == 422
    assert "provider_identifier" in response.json()["error"]["validation_errors"]
    assert AuthIdentity.objects.filter(actor=actor).count() == 1


def test_create_at_a_provider_without_manual_identities_is_422(
    account: Account, api: ApiClient, actor: Actor
) -> None:
    provider = ProviderFactory(account=account, adapter=AuthProvider.Adapter.GOOGLE_WORKSPACE)
    body = {"identity": {"provider_identifier": "jane@example.com"}}
    response = api.post(_create_path(actor, provider), body)
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "reason": "Unprocessable Entity",
            "validation_errors": {"provider_id": [MSG_NO_MANUAL_IDENTITIES]},
        }
    }
    assert not AuthIdentity.objects.filter(actor=actor).exists()


def test_create_with_unknown_or_foreign_actor_or_provider_is_404(
    account: Account, api: ApiClient, actor: Actor
) -> None:
    provider = ProviderFactory(account=account)
    foreign_actor = ActorFactory()
    foreign_provider = ProviderFactory()
    body = {"identity": {"provider_identifier": "jane@example.com"}}
    for actor_id, provider_id in (
        (uuid.uuid4(), provider.pk),
        ("not-a-uuid", provider.pk),
        (foreign_actor.pk, provider.pk),
        (actor.pk, uuid.uuid4()),
        (actor.pk, "not-a-uuid"),
        (actor.pk, foreign_provider.pk),
    ):
        response = api.post(_create_path(actor_id, provider_id), body)
        assert response.status_code == 404, (actor_id, provider_id)
        assert response.json() == NOT_FOUND
    assert not AuthIdentity.objects.exists()


def test_create_without_wrapper_is_400(account: Account, api: ApiClient, actor: Actor) -> None:
    provider = ProviderFactory(account=account)
    response = api.post(_create_path(actor, provider), {"provider_identifier": "a@example.com"})
    assert response.status_code == 400
    assert response.json() == error("Bad Request")
