"""REST API: an actor group's members (portal.md §5.2 rows 43-45)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import Account, Actor, ActorGroup, ActorGroupMembership
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    MembershipFactory,
    everyone_group,
    synced_group,
)
from tests.api import ApiClient, api_token, error

pytestmark = pytest.mark.django_db

NOT_FOUND = error("Not Found")
INVALID_PAYLOAD = error("Invalid payload")


@pytest.fixture
def account() -> Account:
    return AccountFactory()


@pytest.fixture
def api(account: Account) -> ApiClient:
    return ApiClient(api_token(account=account))


@pytest.fixture
def group(account: Account) -> ActorGroup:
    return GroupFactory(account=account)


def _path(group: ActorGroup | Any) -> str:
    return f"/actor_groups/{group.pk if isinstance(group, ActorGroup) else group}/memberships"


def _shape(actor: Actor) -> dict[str, Any]:
    return {"id": str(actor.pk), "name": actor.name, "type": actor.type}


def _members(group: ActorGroup) -> set[uuid.UUID]:
    return set(ActorGroupMembership.objects.filter(group=group).values_list("actor_id", flat=True))


def _ids(*actors: Actor) -> dict[str, Any]:
    return {"data": {"actor_ids": sorted(str(a.pk) for a in actors)}}


def test_unauthenticated_is_401(group: ActorGroup) -> None:
    response = ApiClient().get(_path(group))
    assert response.status_code == 401
    assert response.json() == error("Unauthorized")


def test_list_the_members_in_pages(account: Account, api: ApiClient, group: ActorGroup) -> None:
    actors = [ActorFactory(account=account, name=f"A{i}") for i in range(5)]
    for actor in actors:
        MembershipFactory(group=group, actor=actor)
    MembershipFactory(group=GroupFactory(account=account))  # another group's member
    first = api.get(_path(group), limit=2).json()
    assert first["data"] == [_shape(a) for a in actors[:2]]
    assert first["metadata"]["count"] == 5
    assert first["metadata"]["prev_page"] is None
    second = api.get(_path(group), limit=2, page_cursor=first["metadata"]["next_page"]).json()
    assert second["data"] == [_shape(a) for a in actors[2:4]]
    third = api.get(_path(group), limit=2, page_cursor=second["metadata"]["next_page"]).json()
    assert third["data"] == [_shape(actors[4])]
    assert third["metadata"]["next_page"] is None
    back = api.get(_path(group), limit=2, page_cursor=third["metadata"]["prev_page"]).json()
    assert back["data"] == second["data"]
    start = api.get(_path(group), limit=2, page_cursor=back["metadata"]["prev_page"]).json()
    assert start["data"] == first["data"]


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_unknown_malformed_and_foreign_groups_are_404(api: ApiClient, method: str) -> None:
    foreign = MembershipFactory()
    bodies = {"put": {"memberships": []}, "patch": {"memberships": {"remove": []}}}
    for key in (uuid.uuid4(), "not-a-uuid", foreign.group_id):
        if method == "get":
            response = api.get(_path(key))
        else:
            response = api.send(method, _path(key), bodies[method])
        assert response.status_code == 404, key
        assert response.json() == NOT_FOUND
    assert ActorGroupMembership.objects.filter(pk=foreign.pk).exists()


def test_put_replaces_the_members(account: Account, api: ApiClient, group: ActorGroup) -> None:
    stays, goes, comes = (ActorFactory(account=account) for _ in range(3))
    MembershipFactory(group=group, actor=stays)
    MembershipFactory(group=group, actor=goes)
    body = {"memberships": [{"actor_id": str(stays.pk)}, {"actor_id": str(comes.pk)}]}
    response = api.send("put", _path(group), body)
    assert response.status_code == 200
    assert response.json() == _ids(stays, comes)
    assert _members(group) == {stays.pk, comes.pk}
    response = api.send("put", _path(group), {"memberships": []})
    assert response.json() == _ids()
    assert _members(group) == set()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_unknown_malformed_or_foreign_actors_are_an_invalid_payload(
    account: Account, api: ApiClient, group: ActorGroup, method: str
) -> None:
    member, newcomer = ActorFactory(account=account), ActorFactory(account=account)
    MembershipFactory(group=group, actor=member)
    for bad in (str(uuid.uuid4()), "not-a-uuid", str(ActorFactory().pk)):
        if method == "put":
            body: Any = {"memberships": [{"actor_id": str(newcomer.pk)}, {"actor_id": bad}]}
        else:
            body = {"memberships": {"add": [str(newcomer.pk), bad], "remove": [str(member.pk)]}}
        response = api.send(method, _path(group), body)
        assert response.status_code == 422, bad
        assert response.json() == INVALID_PAYLOAD
        assert _members(group) == {member.pk}  # nothing changed


@pytest.mark.parametrize("method", ["put", "patch"])
def test_synced_and_managed_groups_are_not_found(
    account: Account, api: ApiClient, method: str
) -> None:
    actor = ActorFactory(account=account)
    body: Any = (
        {"memberships": [{"actor_id": str(actor.pk)}]}
        if method == "put"
        else {"memberships": {"add": [str(actor.pk)]}}
    )
    for group in (synced_group(account), everyone_group(account)):
        response = api.send(method, _path(group), body)
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
        assert _members(group) == set()


def test_patch_adds_and_removes(account: Account, api: ApiClient, group: ActorGroup) -> None:
    stays, goes, comes = (ActorFactory(account=account) for _ in range(3))
    MembershipFactory(group=group, actor=stays)
    MembershipFactory(group=group, actor=goes)
    body = {"memberships": {"add": [str(comes.pk), "", str(stays.pk)], "remove": [str(goes.pk)]}}
    response = api.send("patch", _path(group), body)
    assert response.status_code == 200
    assert response.json() == _ids(stays, comes)
    assert _members(group) == {stays.pk, comes.pk}
    response = api.send("patch", _path(group), {"memberships": {"remove": [str(comes.pk), " "]}})
    assert response.status_code == 200
    assert response.json() == _ids(stays)


@pytest.mark.parametrize("method", ["put", "patch"])
def test_body_without_memberships_is_400(api: ApiClient, group: ActorGroup, method: str) -> None:
    response = api.send(method, _path(group), {"actor_ids": []})
    assert response.status_code == 400
    assert response.json() == error("Bad Request")


def test_bodies_of_the_wrong_shape_are_422(api: ApiClient, group: ActorGroup) -> None:
    response = api.send("put", _path(group), {"memberships": {"add": []}})
    assert response.status_code == 422
    response = api.send("patch", _path(group), {"memberships": [{"actor_id": "x"}]})
    assert response.status_code == 422
    assert response.json()["error"]["reason"] == "Unprocessable Entity"
