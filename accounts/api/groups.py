"""REST API: actor groups (portal.md §5.2 rows 38-42), over the group selectors and services.

GET    /actor_groups          list, by creation time
GET    /actor_groups/<id>     {id, name}
POST   /actor_groups          {"actor_group": {"name"}} → 201 + Location (a static group)
PUT    /actor_groups/<id>     rename (PATCH alike); synced groups and Everyone are a 422
DELETE /actor_groups/<id>     the deleted group; synced groups and Everyone are a 422
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors.groups import group_get, group_list
from accounts.services.groups import group_create, group_delete, group_update
from firezone.api.authentication import subject_of
from firezone.api.schema import (
    ERRORS,
    INVALID,
    INVALID_CURSOR,
    NOT_FOUND,
    PAGE_PARAMETERS,
    many,
    one,
    wrapped,
)
from firezone.api.views import ApiView, created, data


class GroupOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class GroupIn(serializers.Serializer):
    name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )


class GroupsApi(ApiView):
    @extend_schema(
        operation_id="listActorGroups",
        summary="List actor groups",
        description="The account's groups (Everyone and synced ones too), by creation time.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("ActorGroup", GroupOut), **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self.page(request, group_list(subject_of(request)), GroupOut)

    @extend_schema(
        operation_id="createActorGroup",
        summary="Create an actor group",
        description="A static group.",
        request=wrapped("ActorGroup", "actor_group", GroupIn()),
        responses={201: one("ActorGroup", GroupOut()), **INVALID, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        fields = self.input(request, "actor_group", GroupIn)
        group = group_create(subject=subject_of(request), name=fields.get("name") or "")
        return created(GroupOut(group).data, f"/actor_groups/{group.pk}")


class GroupApi(ApiView):
    @extend_schema(
        operation_id="getActorGroup",
        summary="Get an actor group",
        responses={200: one("ActorGroup", GroupOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        return data(GroupOut(group_get(subject_of(request), group_id=id)).data)

    @extend_schema(
        operation_id="updateActorGroup",
        summary="Rename an actor group",
        description="Synced groups and Everyone cannot be changed (422).",
        request=wrapped("ActorGroup", "actor_group", GroupIn()),
        responses={200: one("ActorGroup", GroupOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        fields = self.input(request, "actor_group", GroupIn)
        subject = subject_of(request)
        group = group_get(subject, group_id=id)
        group = group_update(subject=subject, group=group, name=fields.get("name"))
        return data(GroupOut(group).data)

    @extend_schema(
        operation_id="patchActorGroup",
        summary="Rename an actor group",
        description="Synced groups and Everyone cannot be changed (422).",
        request=wrapped("ActorGroup", "actor_group", GroupIn()),
        responses={200: one("ActorGroup", GroupOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def patch(self, request: Request, id: str) -> Response:
        return self.put(request, id)

    @extend_schema(
        operation_id="deleteActorGroup",
        summary="Delete an actor group",
        description="With its memberships, policies and flows; answers the deleted group. "
        "Synced groups and Everyone cannot be deleted (422).",
        responses={200: one("ActorGroup", GroupOut()), **NOT_FOUND, 422: INVALID[422], **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        group = group_get(subject, group_id=id)
        payload = GroupOut(group).data
        group_delete(subject=subject, group=group)
        return data(payload)


urlpatterns = [
    path("actor_groups", GroupsApi.as_view(), name="api_actor_groups"),
    path("actor_groups/<str:id>", GroupApi.as_view(), name="api_actor_group"),
]
