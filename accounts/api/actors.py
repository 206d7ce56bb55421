"""REST API: actors (portal.md §5.2 rows 29-33), over the actor selectors and services.

GET    /actors          list (all types, API clients too), by creation time
GET    /actors/<id>     {id, name, type}
POST   /actors          {"actor": {"name", "type"}} → 201 + Location; plan limits are 422s
                        ("Seat Limit Reached", "Service Accounts Limit Reached")
PUT    /actors/<id>     the fields given (PATCH alike); demoting the last admin is a 422
DELETE /actors/<id>     the deleted actor; the last enabled admin is a 422
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors.actors import actor_get, actor_list
from accounts.services.actors import actor_create, actor_delete, actor_update
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


class ActorOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    type = serializers.CharField()


class ActorIn(serializers.Serializer):
    # Shapes only: blank, length and type rules (and their messages) are the service's.
    name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )
    type = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="account_user, account_admin_user, service_account or api_client",
    )


class ActorsApi(ApiView):
    @extend_schema(
        operation_id="listActors",
        summary="List actors",
        description="The account's actors of every type, by creation time.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("Actor", ActorOut), **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self.page(request, actor_list(subject_of(request)), ActorOut)

    @extend_schema(
        operation_id="createActor",
        summary="Create an actor",
        description="Name and type required; the plan's seat and service account limits apply "
        '(422 "Seat Limit Reached" / "Service Accounts Limit Reached").',
        request=wrapped("Actor", "actor", ActorIn()),
        responses={201: one("Actor", ActorOut()), **INVALID, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        fields = self.input(request, "actor", ActorIn)
        actor = actor_create(
            subject=subject_of(request),
            name=fields.get("name") or "",
            type=fields.get("type") or "",
        )
        return created(ActorOut(actor).data, f"/actors/{actor.pk}")


class ActorApi(ApiView):
    @extend_schema(
        operation_id="getActor",
        summary="Get an actor",
        responses={200: one("Actor", ActorOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        return data(ActorOut(actor_get(subject_of(request), actor_id=id)).data)

    @extend_schema(
        operation_id="updateActor",
        summary="Update an actor",
        description="Changes the fields given; demoting the last admin is refused (422).",
        request=wrapped("Actor", "actor", ActorIn()),
        responses={200: one("Actor", ActorOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        fields = self.input(request, "actor", ActorIn)
        subject = subject_of(request)
        actor = actor_get(subject, actor_id=id)
        actor = actor_update(
            subject=subject, actor=actor, name=fields.get("name"), type=fields.get("type")
        )
        return data(ActorOut(actor).data)

    @extend_schema(
        operation_id="patchActor",
        summary="Update an actor",
        description="Changes the fields given; demoting the last admin is refused (422).",
        request=wrapped("Actor", "actor", ActorIn()),
        responses={200: one("Actor", ActorOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def patch(self, request: Request, id: str) -> Response:
        return self.put(request, id)

    @extend_schema(
        operation_id="deleteActor",
        summary="Delete an actor",
        description="With its identities, clients, tokens and memberships; answers the deleted "
        "actor. The last enabled admin cannot be deleted (422).",
        responses={200: one("Actor", ActorOut()), **NOT_FOUND, 422: INVALID[422], **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        actor = actor_get(subject, actor_id=id)
        payload = ActorOut(actor).data
        actor_delete(subject=subject, actor=actor)
        return data(payload)


urlpatterns = [
    path("actors", ActorsApi.as_view(), name="api_actors"),
    path("actors/<str:id>", ActorApi.as_view(), name="api_actor"),
]
