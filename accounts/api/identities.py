"""REST API: an actor's identities (portal.md §5.2 rows 34-37), over the identity selectors and
services.

GET    /actors/<actor_id>/identities              list, by creation time
GET    /actors/<actor_id>/identities/<id>         {id, actor_id, provider_id, provider_identifier,
                                                   email}
DELETE /actors/<actor_id>/identities/<id>         the deleted identity; synced ones are a 422
POST   /actors/<actor_id>/providers/<provider_id>/identities
       {"identity": {"provider_identifier", "email"?}} → 201 + Location (the confirmation is
       filled in); the provider must take manually created identities, else a 422
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import Subject
from accounts.models import AuthIdentity
from accounts.selectors.actors import actor_get
from accounts.selectors.identities import identity_get, identity_list_for_actor
from accounts.selectors.providers import provider_get
from accounts.services.identities import identity_create, identity_delete
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
from firezone.errors import NotFound


class IdentityOut(serializers.Serializer):
    id = serializers.UUIDField()
    actor_id = serializers.UUIDField()
    provider_id = serializers.UUIDField()
    provider_identifier = serializers.CharField()
    email = serializers.CharField(allow_null=True)


class IdentityIn(serializers.Serializer):
    provider_identifier = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )
    email = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )


def _identity_of_actor(subject: Subject, actor_id: str, id: str) -> AuthIdentity:
    actor = actor_get(subject, actor_id=actor_id)
    identity = identity_get(subject, identity_id=id)
    if identity.actor_id != actor.pk:
        raise NotFound()
    return identity


class IdentitiesApi(ApiView):
    @extend_schema(
        operation_id="listActorIdentities",
        summary="List an actor's identities",
        description="By creation time.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("Identity", IdentityOut), **NOT_FOUND, **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request, actor_id: str) -> Response:
        subject = subject_of(request)
        actor = actor_get(subject, actor_id=actor_id)
        return self.page(request, identity_list_for_actor(subject, actor=actor), IdentityOut)


class IdentityApi(ApiView):
    @extend_schema(
        operation_id="getActorIdentity",
        summary="Get an actor's identity",
        responses={200: one("Identity", IdentityOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, actor_id: str, id: str) -> Response:
        identity = _identity_of_actor(subject_of(request), actor_id, id)
        return data(IdentityOut(identity).data)

    @extend_schema(
        operation_id="deleteActorIdentity",
        summary="Delete an actor's identity",
        description="With its clients and tokens; answers the deleted identity. Identities "
        "synced from an identity provider cannot be deleted (422).",
        responses={
            200: one("Identity", IdentityOut()),
            **NOT_FOUND,
            422: INVALID[422],
            **ERRORS,
        },
    )
    def delete(self, request: Request, actor_id: str, id: str) -> Response:
        subject = subject_of(request)
        identity = _identity_of_actor(subject, actor_id, id)
        payload = IdentityOut(identity).data
        identity_delete(subject=subject, identity=identity)
        return data(payload)


class ProviderIdentitiesApi(ApiView):
    @extend_schema(
        operation_id="createActorIdentity",
        summary="Create an identity for an actor",
        description="At a provider that takes manually created identities (email, "
        "username/password, OpenID Connect); others answer 422.",
        request=wrapped("Identity", "identity", IdentityIn()),
        responses={201: one("Identity", IdentityOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def post(self, request: Request, actor_id: str, provider_id: str) -> Response:
        fields = self.input(request, "identity", IdentityIn)
        subject = subject_of(request)
        actor = actor_get(subject, actor_id=actor_id)
        provider = provider_get(subject, provider_id=provider_id)
        identifier = fields.get("provider_identifier")
        identity = identity_create(
            subject=subject,
            actor=actor,
            provider=provider,
            provider_identifier=identifier or "",
            email=fields.get("email"),
            provider_identifier_confirmation=identifier,
        )
        return created(IdentityOut(identity).data, f"/actors/{actor.pk}/identities/{identity.pk}")


urlpatterns = [
    path("actors/<str:actor_id>/identities", IdentitiesApi.as_view(), name="api_identities"),
    path("actors/<str:actor_id>/identities/<str:id>", IdentityApi.as_view(), name="api_identity"),
    path(
        "actors/<str:actor_id>/providers/<str:provider_id>/identities",
        ProviderIdentitiesApi.as_view(),
        name="api_provider_identities",
    ),
]
