"""REST API: the access explainer (`GET /actors/<id>/access`)."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync

from accounts.tests.factories import ProviderFactory
from gateways import presence
from resources.tests.factories import World
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")


def test_explains_a_denial_with_its_policies_sites_and_context() -> None:
    world = World()
    world.policy.conditions = [
        {"property": "remote_ip_location_region", "operator": "is_in", "values": ["DE"]}
    ]
    world.policy.save()
    api = ApiClient(api_token(account=world.account))
    response = api.get(
        f"/actors/{world.actor.pk}/access",
        resource_id=str(world.resource.pk),
        at="2025-10-08T12:00:00Z",
    )
    assert response.status_code == 200, response.content
    body = response.json()["data"]
    assert body["allowed"] is False and body["authorized"] is False
    assert body["reason"] == "connecting from US, the policy requires one of DE"
    assert body["granting_policy_id"] is None and body["expires_at"] is None
    [policy] = body["policies"]
    assert policy["policy_id"] == str(world.policy.pk) and policy["member"] is True
    assert policy["membership"] == "added manually"
    assert policy["conditions"] == [
        {
            "property": "remote_ip_location_region",
            "operator": "is_in",
            "values": ["DE"],
            "passed": False,
            "evaluated_against": "US",
            "reason": "connecting from US, the policy requires one of DE",
        }
    ]
    [site] = body["sites"]
    assert site["site_id"] == str(world.site.pk) and site["online_gateways"] == 0
    assert body["context"] == {
        "at": "2025-10-08T12:00:00Z",
        "client_id": str(world.client.pk),
        "location": "US",
        "remote_ip": "198.51.100.7",
        "provider_id": None,
        "verified": False,
        "version": "1.4.0",
    }


def test_overrides_and_an_online_gateway_allow() -> None:
    world = World()
    world.policy.conditions = [
        {"property": "remote_ip_location_region", "operator": "is_in", "values": ["DE"]}
    ]
    world.policy.save()
    topic = presence.account_gateways_topic(world.account.pk)
    async_to_sync(presence.track)(topic, str(world.gateway.pk), "conn-explain", {})
    try:
        api = ApiClient(api_token(account=world.account))
        body = api.get(
            f"/actors/{world.actor.pk}/access",
            resource_id=str(world.resource.pk),
            location="de",
            client_id=str(world.client.pk),
            verified="true",
        ).json()["data"]
    finally:
        async_to_sync(presence.untrack)(topic, str(world.gateway.pk), "conn-explain")
    assert body["allowed"] is True, body
    assert body["granting_policy_id"] == str(world.policy.pk)
    assert body["chosen_gateway_id"] == str(world.gateway.pk)
    assert body["context"]["location"] == "DE" and body["context"]["verified"] is True


def test_other_accounts_ids_are_not_found() -> None:
    world, other = World(), World()
    foreign = ProviderFactory(account=other.account)
    api = ApiClient(api_token(account=world.account))
    mine = {"resource_id": str(world.resource.pk)}
    for path, params in (
        (f"/actors/{other.actor.pk}/access", mine),
        (f"/actors/{world.actor.pk}/access", {"resource_id": str(other.resource.pk)}),
        (f"/actors/{world.actor.pk}/access", {**mine, "client_id": str(other.client.pk)}),
        (f"/actors/{world.actor.pk}/access", {"resource_id": "not-a-uuid"}),
        (f"/actors/{world.actor.pk}/access", {**mine, "provider_id": str(foreign.pk)}),
        (f"/actors/{world.actor.pk}/access", {**mine, "provider_id": "nope"}),
        (f"/actors/{uuid.uuid4()}/access", mine),
    ):
        response = api.get(path, **params)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), (path, params)
    # Another actor's client of the same account is not this actor's.
    stranger = World(world.account)
    response = api.get(
        f"/actors/{world.actor.pk}/access", **mine, client_id=str(stranger.client.pk)
    )
    assert response.status_code == 404


def test_bad_parameters_are_422() -> None:
    world = World()
    api = ApiClient(api_token(account=world.account))
    path = f"/actors/{world.actor.pk}/access"
    resource = str(world.resource.pk)
    for params, field in (
        ({}, "resource_id"),
        ({"resource_id": resource, "at": "yesterday"}, "at"),
        ({"resource_id": resource, "at": "2025-13-45T99:00"}, "at"),
        ({"resource_id": resource, "at": "0001-01-01T00:00:00+14:00"}, "at"),
        ({"resource_id": resource, "at": "9999-12-31T23:59:59"}, "at"),
        ({"resource_id": resource, "location": "XX"}, "location"),
        ({"resource_id": resource, "remote_ip": "10.0.0.300"}, "remote_ip"),
        ({"resource_id": resource, "verified": "maybe"}, "verified"),
    ):
        response = api.get(path, **params)
        assert response.status_code == 422, (params, response.content)
        assert field in response.json()["error"]["validation_errors"], response.json()


def test_needs_a_token() -> None:
    world = World()
    response = ApiClient().get(
        f"/actors/{world.actor.pk}/access", resource_id=str(world.resource.pk)
    )
    assert response.status_code == 401
